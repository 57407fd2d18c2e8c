"""A real SMTP server for tests (aiosmtpd), receiving the customer e-mails Shopkeeper sends.

`smtp_server()` starts one on a free local port (in a thread of its own) for the duration and
points Django's SMTP backend at it; `refuse_next(n)` makes it answer the next n messages with
a temporary failure (451), as a server that is down for a moment.
"""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from django.test import override_settings


class Inbox:
    """aiosmtpd's handler: keeps every message accepted, parsed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self._refusals = 0

    def refuse_next(self, count: int = 1) -> None:
        with self._lock:
            self._refusals = count

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self._refusals:
                self._refusals -= 1
                return "451 4.3.0 Try again later"
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            assert isinstance(message, EmailMessage)
            self.messages.append(message)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]

    def subjects(self) -> list[str]:
        with self._lock:
            return [str(m["Subject"]) for m in self.messages]


def bodies(message: EmailMessage) -> tuple[str, str]:
    """The message's plain text and HTML parts."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None, "a mail has a plain text and an HTML part"
    return str(text.get_content()), str(html.get_content())


@contextmanager
def smtp_server() -> Iterator[Inbox]:
    inbox = Inbox()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=port,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
            EMAIL_TIMEOUT=5,
        ):
            yield inbox
    finally:
        controller.stop()
