"""What a signed webhook body must look like before anything of it is stored or handled.

A body signed with our secret can still be malformed (a test, a bug, a leaked secret). It is
refused with 400 and a log line, never stored as a failed event that would be retried forever.
Pure: no Django, no Stripe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shopkeeper.errors import WebhookEventMalformed

MAX_ID_LENGTH = 255  # WebhookEvent.event_id and every Stripe id we keep
MAX_TYPE_LENGTH = 100  # WebhookEvent.type


def _short_string(value: Any, limit: int) -> bool:
    return isinstance(value, str) and 0 < len(value) <= limit


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, Mapping):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def check_event_shape(event: Mapping[str, Any]) -> None:
    """Raise WebhookEventMalformed unless `event` has Stripe's envelope and a usable object."""
    if _has_nul(event):  # PostgreSQL can store no NUL in text or jsonb
        raise WebhookEventMalformed("The event contains a NUL character")
    if not _short_string(event.get("id"), MAX_ID_LENGTH):
        raise WebhookEventMalformed(
            f"The event id must be a string of 1-{MAX_ID_LENGTH} characters"
        )
    if not _short_string(event.get("type"), MAX_TYPE_LENGTH):
        raise WebhookEventMalformed(
            f"The event type must be a string of 1-{MAX_TYPE_LENGTH} characters"
        )
    created = event.get("created", 0)
    if not isinstance(created, int) or isinstance(created, bool):
        raise WebhookEventMalformed("The event's created time must be an integer")
    data = event.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("object"), Mapping):
        raise WebhookEventMalformed("The event's data.object must be an object")
    obj = data["object"]
    if "id" in obj and not _short_string(obj["id"], MAX_ID_LENGTH):
        raise WebhookEventMalformed(
            f"The event object's id must be a string of 1-{MAX_ID_LENGTH} characters"
        )
