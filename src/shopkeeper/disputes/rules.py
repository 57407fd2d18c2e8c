"""Dispute (chargeback) rules: which Stripe statuses are open, which are final, what each final
one means for the money. Pure Python, no Django, no Stripe.

Stripe takes the disputed amount from the shop when a dispute opens. While it is open that money
is held back: it cannot be refunded (the ledger's `dispute` entry subtracts it from what is
refundable). A dispute the shop wins, an inquiry closed without a chargeback, or one prevented
gives the money back (a `dispute_closed` entry); a lost one does not: the money stays gone and
stays unrefundable.

A dispute only moves forward: an inquiry can escalate to a chargeback, a chargeback goes under
review, and a closed dispute is final. News ranking below what we already know is older news (a
late or reordered webhook) and changes nothing.
"""

from __future__ import annotations

from enum import StrEnum

from shopkeeper.payments.stripe_statuses import DisputeStatus


class DisputeOutcome(StrEnum):
    OPEN = "open"
    # The money is the shop's again (won, inquiry closed, prevented).
    RELEASED = "released"
    # The cardholder's bank kept the money.
    LOST = "lost"


_D = DisputeStatus
# How far a dispute has come; every final status ranks last.
_PROGRESS: dict[DisputeStatus, int] = {
    _D.WARNING_NEEDS_RESPONSE: 0,
    _D.WARNING_UNDER_REVIEW: 1,
    _D.NEEDS_RESPONSE: 2,
    _D.UNDER_REVIEW: 3,
    _D.WARNING_CLOSED: 4,
    _D.WON: 4,
    _D.LOST: 4,
    _D.PREVENTED: 4,
}
_OUTCOMES: dict[DisputeStatus, DisputeOutcome] = {
    _D.WARNING_CLOSED: DisputeOutcome.RELEASED,
    _D.WON: DisputeOutcome.RELEASED,
    _D.PREVENTED: DisputeOutcome.RELEASED,
    _D.LOST: DisputeOutcome.LOST,
}
FINAL_STATUSES = frozenset(_OUTCOMES)
OPEN_STATUSES = frozenset(DisputeStatus) - FINAL_STATUSES


def dispute_status(stripe_status: str) -> DisputeStatus:
    try:
        return DisputeStatus(stripe_status)
    except ValueError:
        raise ValueError(f"unknown Stripe dispute status {stripe_status!r}") from None


def outcome_of(status: DisputeStatus | str) -> DisputeOutcome:
    return _OUTCOMES.get(DisputeStatus(status), DisputeOutcome.OPEN)


def is_newer(current: DisputeStatus | str, reported: DisputeStatus | str) -> bool:
    """True when `reported` is news about a dispute we know as `current`.

    A final status never changes; an open one moves only forward.
    """
    current, reported = DisputeStatus(current), DisputeStatus(reported)
    if current in FINAL_STATUSES or current == reported:
        return False
    return _PROGRESS[reported] > _PROGRESS[current]


def opening_status(reported: DisputeStatus | str) -> DisputeStatus:
    """The open status of a dispute first heard of as `reported`: itself when open; for a
    dispute first heard of when it closed, where it must have started (an inquiry for
    `warning_closed`, a chargeback otherwise)."""
    reported = DisputeStatus(reported)
    if reported in OPEN_STATUSES:
        return reported
    if reported == DisputeStatus.WARNING_CLOSED:
        return DisputeStatus.WARNING_NEEDS_RESPONSE
    return DisputeStatus.NEEDS_RESPONSE
