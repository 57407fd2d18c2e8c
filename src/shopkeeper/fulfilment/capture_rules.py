"""Capture on fulfilment (`SHOPKEEPER_CAPTURE=on_fulfillment`): what is captured, and when a
shipment is refused because the authorisation is gone. Pure Python, no Django, no Stripe.

Stripe captures a PaymentIntent once: `amount_to_capture` below what is authorised releases the
rest. So the capture waits for the last shipment (nothing left to ship), and takes the worth of
the units shipped plus the order's shipping, never more than is still authorised:

    to_capture = min(sum(unit_price * shipped) + shipping, capturable)

An order that shipped nothing captures nothing (its authorisation is cancelled, not captured).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shopkeeper.errors import Conflict


class AuthorizationLapsed(Conflict):
    code = "authorization_lapsed"
    title = "The card authorisation has lapsed or was voided: nothing can be captured on shipping"


@dataclass(frozen=True, slots=True)
class ShippedLine:
    unit_price_minor: int
    shipped: int


def amount_to_capture(
    lines: Sequence[ShippedLine], *, shipping_minor: int, capturable_minor: int
) -> int:
    """What the last shipment captures, in minor units: the shipped units' worth plus shipping,
    bounded by what is still authorised; 0 when nothing shipped or nothing is authorised."""
    shipped_worth = sum(line.unit_price_minor * line.shipped for line in lines)
    if shipped_worth <= 0 or capturable_minor <= 0:
        return 0
    return min(shipped_worth + shipping_minor, capturable_minor)


def ensure_authorisation_open(
    *,
    stripe_voided: bool,
    authorised_at: datetime | None,
    now: datetime,
    expire_after: timedelta,
) -> None:
    """A shipment of an order captured on fulfilment needs its authorisation still open:
    not voided at Stripe and not past SHOPKEEPER_AUTH_EXPIRE_AFTER (Stripe lets it lapse about
    7 days after the card was authorised, and would refuse the capture)."""
    if stripe_voided:
        raise AuthorizationLapsed(
            "Stripe has voided this order's card authorisation: take a new payment before shipping",
        )
    if authorised_at is not None and now >= authorised_at + expire_after:
        raise AuthorizationLapsed(
            "This order's card authorisation is past its deadline "
            f"({authorised_at + expire_after:%Y-%m-%d %H:%M} UTC): capture it or cancel the "
            "order before shipping",
            expired_at=(authorised_at + expire_after).isoformat(),
        )
