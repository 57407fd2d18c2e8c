"""Durations written the way people write them in settings: `90s`, `2m`, `60m`, `6d18h`.

Pure: no Django. A bare number is seconds. Units: `s`, `m`, `h`, `d`, largest first, each once.
"""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_ORDER = "dhms"


class BadDuration(ValueError):
    """Not a duration such as `90s`, `2m`, `6d18h` or a number of seconds."""


def parse_duration(text: str) -> timedelta:
    """`"6d18h"` → 6 days 18 hours; `"90"` → 90 seconds. Refuses negatives and junk."""
    cleaned = text.strip().lower().replace(" ", "")
    if not cleaned:
        raise BadDuration("a duration is required, e.g. 90s, 2m, 6d18h")
    try:
        return timedelta(seconds=float(cleaned)) if _is_number(cleaned) else _parts(cleaned)
    except OverflowError as error:
        raise BadDuration(f"{text!r} is too long a duration") from error


def format_duration(value: timedelta) -> str:
    """The shortest text `parse_duration` reads back as `value` (whole seconds): `6d18h`."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit in _ORDER:
        count, seconds = divmod(seconds, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    if float(text) < 0 or float(text) != float(text) or float(text) == float("inf"):
        raise BadDuration(f"{text!r} is not a duration of 0 or more seconds")
    return True


def _parts(text: str) -> timedelta:
    position, seconds, last_unit = 0, 0.0, -1
    for match in _PART.finditer(text):
        unit = _ORDER.index(match.group(2))
        if match.start() != position or unit <= last_unit:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position, last_unit = match.end(), unit
    if position != len(text):
        raise BadDuration(f"{text!r} is not a duration such as 90s, 2m, 60m or 6d18h")
    return timedelta(seconds=seconds)
