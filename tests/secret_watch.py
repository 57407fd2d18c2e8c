"""Watches the whole test session for a Stripe secret key (or the audit key) in a log record or a
response body.

`tests/conftest.py` installs one `SecretWatch` for the session: a handler on the root logger sees
every record any test produces (before the console's masking filter, so a key the code logs is
found even though the mask would hide it), and every response Django builds (test client, live
server, in-process WSGI) is searched. At the end of the session any sighting fails the run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.handlers.base import BaseHandler

# Stripe secret and restricted keys, live or test (publishable pk_ keys are public).
SECRET_KEY_SHAPE = re.compile(r"\b[rs]k_(?:live|test)_[A-Za-z0-9_]{6,}")


class SecretWatch(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.sightings: list[str] = []
        self.responses = 0
        self.records = 0

    def secrets_in(self, text: str) -> list[str]:
        found = SECRET_KEY_SHAPE.findall(text)
        for name in ("STRIPE_SECRET_KEY", "SHOPKEEPER_AUDIT_KEY"):
            configured = getattr(settings, name, "")
            if configured and configured in text and configured not in found:
                found.append(configured)
        return found

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        try:
            text = record.getMessage()
        except Exception:  # a malformed record is the logging call's problem, not ours
            text = str(record.msg)
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        if self.secrets_in(text):
            self.sightings.append(f"log record {record.name}:{record.lineno}: {text[:200]!r}")

    def check_response(self, request: Any, response: Any) -> None:
        self.responses += 1
        if getattr(response, "streaming", False):
            return
        body = bytes(getattr(response, "content", b"") or b"").decode("utf-8", "replace")
        headers = str(dict(getattr(response, "headers", {})))
        if self.secrets_in(body) or self.secrets_in(headers):
            path = getattr(request, "path", "?")
            self.sightings.append(f"response {response.status_code} to {path}")

    @contextmanager
    def watching(self) -> Iterator[SecretWatch]:
        """Install the log handler and the response hook; remove both on exit."""
        original: Callable[..., Any] = BaseHandler.get_response
        watch = self

        def get_response(handler: BaseHandler, request: Any) -> Any:
            response = original(handler, request)
            watch.check_response(request, response)
            return response

        root = logging.getLogger()
        root.handlers.insert(0, self)  # before the console's masking filter rewrites the record
        BaseHandler.get_response = get_response  # type: ignore[method-assign]
        try:
            yield self
        finally:
            BaseHandler.get_response = original  # type: ignore[method-assign]
            root.removeHandler(self)
