"""When an uncaptured card authorisation must be acted on: pure rules, no Django, no Stripe.

Stripe releases a card authorisation about 7 days after it was made. Counting from the time the
card was authorised, an authorisation is *expiring* from `warn_after` on (the back office warns:
capture or cancel) and *expired* from `expire_after` on, when the lapse job applies the shop's
action (void, capture or notify). Both are computed when read, from the authorisation's time and
the clock, so the warning can never be stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class ExpiryAction(StrEnum):
    """`SHOPKEEPER_AUTH_EXPIRY_ACTION`: what the lapse job does at `expire_after`."""

    VOID = "void"  # cancel the order as staff would: the authorisation voided, stock returned
    CAPTURE = "capture"  # capture everything authorised
    NOTIFY = "notify"  # flag the order for a person; nothing at Stripe


@dataclass(frozen=True, slots=True)
class AuthorisationWindow:
    warn_after: timedelta
    expire_after: timedelta

    def expires_at(self, authorised_at: datetime) -> datetime:
        return authorised_at + self.expire_after

    def expiring_before(self, now: datetime) -> datetime:
        """Authorisations made at or before this time are expiring at `now`."""
        return now - self.warn_after

    def expired_before(self, now: datetime) -> datetime:
        """Authorisations made at or before this time have expired at `now`."""
        return now - self.expire_after

    def is_expiring(self, authorised_at: datetime, now: datetime) -> bool:
        return authorised_at <= self.expiring_before(now)

    def has_expired(self, authorised_at: datetime, now: datetime) -> bool:
        return authorised_at <= self.expired_before(now)


def span_text(span: timedelta) -> str:
    """A short human span, rounded down: "1 d 18 h", "5 h 20 min", "12 min", "0 min"."""
    minutes = max(int(span.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def expiry_warning(expires_at: datetime, now: datetime) -> str:
    """What staff read on an expiring authorisation's order."""
    if now < expires_at:
        return f"Authorisation lapses in {span_text(expires_at - now)}: capture or cancel"
    return (
        f"Authorisation past its deadline by {span_text(now - expires_at)}: capture or cancel now"
    )
