"""`SHOPKEEPER_EMAIL_URL` read into Django's e-mail settings. Pure: no Django.

    smtp://user:pass@host:587?tls=1   SMTP, STARTTLS after connecting (port 25 by default)
    smtps://user:pass@host            SMTP over TLS from the first byte (port 465 by default)
    console:                          each mail printed on standard output (development)
    file:///path/to/dir               each mail a file in that directory (development)

A user name or password with reserved characters is percent-encoded (`p%40ss` for `p@ss`).
Query options: `tls=0|1`, `ssl=0|1`, `timeout=SECONDS` (default 10). A URL that cannot be read
raises `BadEmailUrl`, whose message shows the URL with its password masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

from shopkeeper.redaction import mask_secrets

SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
CONSOLE_BACKEND = "django.core.mail.backends.console.EmailBackend"
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
DEFAULT_TIMEOUT = 10.0
OPTIONS = frozenset({"tls", "ssl", "timeout"})


class BadEmailUrl(ValueError):
    """SHOPKEEPER_EMAIL_URL cannot be read; the message never holds the password."""


@dataclass(frozen=True)
class EmailConfig:
    backend: str
    host: str = ""
    port: int = 0
    username: str = ""
    password: str = field(default="", repr=False)  # never in a repr, a log line or a page
    use_tls: bool = False
    use_ssl: bool = False
    timeout: float = DEFAULT_TIMEOUT
    file_path: str = ""

    def django_settings(self) -> dict[str, object]:
        """The EMAIL_* settings Django's backends read."""
        return {
            "EMAIL_BACKEND": self.backend,
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": self.port,
            "EMAIL_HOST_USER": self.username,
            "EMAIL_HOST_PASSWORD": self.password,
            "EMAIL_USE_TLS": self.use_tls,
            "EMAIL_USE_SSL": self.use_ssl,
            "EMAIL_TIMEOUT": self.timeout,
            "EMAIL_FILE_PATH": self.file_path,
        }

    def describe(self) -> str:
        """Where mail goes, for a banner or a log line: never the password."""
        if self.backend == CONSOLE_BACKEND:
            return "printed on the console"
        if self.backend == FILE_BACKEND:
            return f"files in {self.file_path}"
        scheme = "smtps" if self.use_ssl else "smtp"
        user = f"{self.username}@" if self.username else ""
        tls = " (STARTTLS)" if self.use_tls else ""
        return f"{scheme}://{user}{self.host}:{self.port}{tls}"


def parse_email_url(url: str) -> EmailConfig:
    text = url.strip()
    scheme, _, _ = text.partition(":")
    scheme = scheme.lower()
    if scheme == "console":
        return EmailConfig(backend=CONSOLE_BACKEND)
    if scheme == "file":
        return _file(text)
    if scheme in ("smtp", "smtps"):
        return _smtp(text, secure=scheme == "smtps")
    raise BadEmailUrl(
        f"SHOPKEEPER_EMAIL_URL {_shown(text)!r}: the scheme must be smtp://, smtps://, console: "
        "or file://"
    )


def _file(text: str) -> EmailConfig:
    parts = urlsplit(text)
    path = unquote(parts.path)
    if parts.netloc not in ("", "localhost") or not path.startswith("/") or path == "/":
        raise BadEmailUrl(
            f"SHOPKEEPER_EMAIL_URL {_shown(text)!r}: a file URL names a directory by its "
            "absolute path, e.g. file:///var/lib/shopkeeper/mail"
        )
    return EmailConfig(backend=FILE_BACKEND, file_path=path)


def _smtp(text: str, *, secure: bool) -> EmailConfig:
    shown = _shown(text)
    parts = urlsplit(text)
    if not parts.hostname:
        raise BadEmailUrl(f"SHOPKEEPER_EMAIL_URL {shown!r} names no host")
    try:
        port = parts.port
    except ValueError:
        raise BadEmailUrl(f"SHOPKEEPER_EMAIL_URL {shown!r}: the port is not a number") from None
    if parts.path not in ("", "/"):
        raise BadEmailUrl(f"SHOPKEEPER_EMAIL_URL {shown!r}: an SMTP URL has no path")
    options = _options(parts.query, shown)
    use_ssl = secure or _switch(options, "ssl", shown)
    use_tls = _switch(options, "tls", shown)
    if use_ssl and use_tls:
        raise BadEmailUrl(
            f"SHOPKEEPER_EMAIL_URL {shown!r}: use smtps:// (TLS from the start) or tls=1 "
            "(STARTTLS), not both"
        )
    return EmailConfig(
        backend=SMTP_BACKEND,
        host=parts.hostname,
        port=port or (465 if use_ssl else 25),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=use_tls,
        use_ssl=use_ssl,
        timeout=_timeout(options, shown),
    )


def _options(query: str, shown: str) -> dict[str, str]:
    try:
        values = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise BadEmailUrl(f"SHOPKEEPER_EMAIL_URL {shown!r}: the query cannot be read") from None
    unknown = sorted(set(values) - OPTIONS)
    if unknown:
        raise BadEmailUrl(
            f"SHOPKEEPER_EMAIL_URL {shown!r}: unknown option {', '.join(unknown)} "
            f"(known: {', '.join(sorted(OPTIONS))})"
        )
    return {name: found[-1] for name, found in values.items()}


def _switch(options: dict[str, str], name: str, shown: str) -> bool:
    value = options.get(name, "0")
    if value not in ("0", "1"):
        raise BadEmailUrl(f"SHOPKEEPER_EMAIL_URL {shown!r}: {name} must be 0 or 1, not {value!r}")
    return value == "1"


def _timeout(options: dict[str, str], shown: str) -> float:
    text = options.get("timeout", "")
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise BadEmailUrl(
            f"SHOPKEEPER_EMAIL_URL {shown!r}: timeout must be a number of seconds above 0"
        )
    return value


def _shown(text: str) -> str:
    """The URL with its password masked, even one holding characters that should be encoded."""
    userinfo, at, _ = text.partition("://")[2].rpartition("@")
    password = userinfo.partition(":")[2] if at else ""
    if password:
        text = text.replace(f":{password}@", ":****@", 1)
    return mask_secrets(text)
