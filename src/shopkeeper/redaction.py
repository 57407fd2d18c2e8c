"""Secrets are masked in log lines: Stripe keys, our API tokens (shk_…), every Authorization
value (Basic credentials, bearer tokens, any scheme), secrets in a query string and passwords in
a URL. `MaskSecretsFilter` is on the console handler (settings.LOGGING) and on gunicorn's error
and access logs (server.gunicorn_app), so the access log is masked too. Pure: no Django.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

MASK = "****"
SECRET_PATTERN = re.compile(r"\b(sk|rk|whsec)_(live|test)?_?[A-Za-z0-9]{4,}")
TOKEN_PATTERN = re.compile(r"\bshk_[A-Za-z0-9_\-]{4,}")
# What django-ninja logs for an Authorization header it does not expect, whatever the scheme.
UNEXPECTED_AUTH = re.compile(r"(Unexpected auth - ')[^']*")
# "Authorization: X Y", "HTTP_AUTHORIZATION': 'X Y'", "authorization=X Y": the whole value.
AUTHORIZATION = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\"\r\n,}]+")
SCHEME_CREDENTIALS = re.compile(
    r"(?i)\b(basic|bearer|token|digest|negotiate|apikey)\s+[A-Za-z0-9._~+/=:\-]{3,}"
)
QUERY_SECRET = re.compile(
    r"(?i)([?&;](?:token|access_token|auth|api_key|apikey|key|secret|client_secret|password"
    r"|signature)=)[^&;\s\"']*"
)
URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@/\s]+(@)")

RULES: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    (SECRET_PATTERN, lambda m: m.group(0)[:8] + "…" + MASK),
    (UNEXPECTED_AUTH, rf"\1{MASK}"),
    (AUTHORIZATION, rf"\1{MASK}"),
    (SCHEME_CREDENTIALS, rf"\1 {MASK}"),
    (QUERY_SECRET, rf"\1{MASK}"),
    (URL_PASSWORD, rf"\1{MASK}\2"),
    (TOKEN_PATTERN, "shk_…" + MASK),
)


def mask_secrets(text: str) -> str:
    for pattern, replacement in RULES:
        text = pattern.sub(replacement, text)
    return text


class MaskSecretsFilter(logging.Filter):
    """Rewrites the record in place (message and exception text), so every handler after this
    one sees it masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_secrets(record.exc_text)
        return True
