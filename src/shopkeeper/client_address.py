"""The client's address, the one the login throttle counts and the audit log records.

Behind `SHOPKEEPER_PROXY_COUNT` trusted proxies, each appends the address it saw to
X-Forwarded-For, so the client is the Nth entry from the right; anything further left was
written by the client and is not believed. With no proxy count (the default), X-Forwarded-For
is ignored and REMOTE_ADDR is the client.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _address(text: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address((text or "").strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    remote = _address(request.META.get("REMOTE_ADDR"))
    proxies = int(getattr(settings, "SHOPKEEPER_PROXY_COUNT", 0))
    if proxies <= 0:
        return remote
    forwarded = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop]
    if len(forwarded) < proxies:
        return remote  # came past fewer proxies than configured: the header is not theirs
    return _address(forwarded[-proxies]) or remote
