"""Keyset cursors for lists newest first by (created_at, id): opaque to clients, checked when
read back, so a bad cursor is a 422 `invalid_cursor` and never a query error."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime

from shopkeeper.errors import InvalidInput

MIN_CURSOR_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_CURSOR_TIME = datetime(9000, 1, 1, tzinfo=UTC)


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"
    title = "The cursor is not one this API returned"


def encode_cursor(created_at: datetime, pk: int) -> str:
    raw = json.dumps([created_at.isoformat(), pk], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, pk = json.loads(base64.urlsafe_b64decode(padded.encode()))
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None or not isinstance(pk, int) or isinstance(pk, bool):
            raise ValueError(cursor)
        if not 0 < pk < 2**63 or not MIN_CURSOR_TIME < when < MAX_CURSOR_TIME:
            raise ValueError(cursor)  # a row id or time no row can have (and no column holds)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidCursor() from error
    return when, pk
