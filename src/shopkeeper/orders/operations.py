"""One money operation at Stripe per order at a time. Pure Python: no Django, no Stripe.

A capture or a cancel (void) is claimed on the order, in the transaction that validates it under
the order's lock, before Stripe is called; the claim is released in the transaction that records
Stripe's answer (or its refusal). Meanwhile another capture or cancel of the order is refused
with `operation_in_progress`: Stripe is never asked to both capture and void one authorisation,
whatever it would accept. A retry of the same operation (same idempotency key) may go ahead: it
is the same request to Stripe, which replays its answer.

A claim whose answer never came (the process was killed, Stripe never answered) is held for a
lease longer than any request can run; after it the next request, or `reconcile`, asks Stripe
what happened, records that, and releases the claim. No order stays claimed forever.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from shopkeeper.errors import Conflict


class Operation(StrEnum):
    CAPTURE = "capture"
    CANCEL = "cancel"
    REFUND = "refund"


class Claim(StrEnum):
    FREE = "free"  # nothing in flight: the operation claims the order
    SAME = "same"  # a retry of the operation in flight (same key): it may go ahead
    EXPIRED = "expired"  # another operation's claim outlived its lease: ask Stripe first


class OperationInProgress(Conflict):
    code = "operation_in_progress"
    title = (
        "Another capture, cancellation or refund of this order is under way at Stripe; "
        "try again once it has finished"
    )


@dataclass(frozen=True, slots=True)
class InFlight:
    operation: str
    key: str
    started_at: datetime


def claim(current: InFlight | None, *, key: str, now: datetime, lease: timedelta) -> Claim:
    """May an operation with idempotency `key` go to Stripe now? Raises OperationInProgress."""
    if current is None:
        return Claim.FREE
    if current.key == key:
        return Claim.SAME
    if now - current.started_at >= lease:
        return Claim.EXPIRED
    raise _busy(current)


def ensure_none_in_flight(current: InFlight | None, *, now: datetime, lease: timedelta) -> None:
    """For a refund: no capture or cancel may be under way (an expired claim does not count:
    the refund's own rules, from the recorded state, decide)."""
    if current is not None and now - current.started_at < lease:
        raise _busy(current)


def _busy(current: InFlight) -> OperationInProgress:
    return OperationInProgress(
        f"A {current.operation} of this order is under way at Stripe; try again once it has "
        "finished",
        operation=current.operation,
        since=current.started_at.isoformat(),
    )
