"""Factories shared by every test tier (a non-test module: any test may import from it).

Start here for a shipping address; more factories (staff, products, orders) move here from the
tiers' *_fixtures.py modules.
"""

from __future__ import annotations

ADDRESS = {
    "name": "Ada",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}


def address(**changes: str) -> dict[str, str]:
    """ADDRESS with some fields changed (or added, as a form's `email`)."""
    return {**ADDRESS, **changes}
