"""Which events must not be processed at the same time: those about one PaymentIntent.

Processing jobs carry a procrastinate `lock` named after the PaymentIntent their event is
about, so the events of one payment (and so of one order's payment) are processed one at a
time, in the order they arrived; events of other payments run in parallel. Pure: the stored
payload alone decides, so the webhook view needs no query for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _id(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):  # an expanded object
        return _id(value.get("id"))
    return None


def processing_lock(payload: Mapping[str, Any]) -> str:
    """`stripe:pi_...` for an event about a PaymentIntent (itself, or a charge, refund or
    dispute of one); else `stripe:<the object's id>`, else `stripe:<the event's id>`."""
    obj = payload.get("data", {}).get("object", {})
    if obj.get("object") == "payment_intent":
        intent = _id(obj.get("id"))
    else:
        intent = _id(obj.get("payment_intent"))
    key = intent or _id(obj.get("charge")) or _id(obj.get("id")) or _id(payload.get("id"))
    return f"stripe:{key}"
