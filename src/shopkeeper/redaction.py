"""A logging filter that masks Stripe secret keys and webhook secrets wherever they appear."""

from __future__ import annotations

import logging
import re

SECRET_PATTERN = re.compile(r"\b(sk|rk|whsec)_(live|test)?_?[A-Za-z0-9]{4,}")


def mask_secrets(text: str) -> str:
    return SECRET_PATTERN.sub(lambda m: m.group(0)[:8] + "…" + "*" * 4, text)


class MaskSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
