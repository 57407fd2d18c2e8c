"""The customer's link to an order, needing no session: `/orders/{number}?key=…`.

The key is an HMAC of the order number under the project's SECRET_KEY (Django's signing, with a
salt of its own), so it cannot be guessed from the number and is checked in constant time; a
wrong or missing key is a 404, as for an order that does not exist.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.core import signing
from django.urls import reverse

_SIGNER = signing.Signer(salt="shopkeeper.checkout.order-link")


def order_key(number: str) -> str:
    return _SIGNER.signature(number)


def order_link(number: str) -> str:
    """The path of the order's customer page, with its key."""
    return f"{reverse('storefront:order', args=[number])}?{urlencode({'key': order_key(number)})}"


def key_opens(number: str, key: str) -> bool:
    try:
        _SIGNER.unsign(f"{number}{_SIGNER.sep}{key}")
    except signing.BadSignature:
        return False
    return True
