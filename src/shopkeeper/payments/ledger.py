"""Ledger arithmetic: balances derived from append-only money movements. Pure Python.

Every movement of money is one ledger entry with a positive amount; what has been authorised,
captured, refunded and what is still refundable is always computed from the entries, never kept
as a counter.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from shopkeeper.errors import Conflict
from shopkeeper.payments.states import PaymentStatus


class EntryKind(StrEnum):
    AUTHORIZATION = "authorization"
    CAPTURE = "capture"
    # The part of an authorisation given up: the rest after a partial capture, or all of it on void.
    RELEASE = "release"
    VOID = "void"
    REFUND = "refund"
    # A refund that succeeded and was later reported failed: the money is back with the shop.
    REFUND_REVERSAL = "refund_reversal"
    DISPUTE = "dispute"
    DISPUTE_CLOSED = "dispute_closed"


@dataclass(frozen=True, slots=True)
class Movement:
    kind: EntryKind | str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class Balance:
    authorized: int = 0
    captured: int = 0
    released: int = 0
    refunded: int = 0
    disputed: int = 0
    voided: bool = False

    @property
    def capturable(self) -> int:
        """Authorised money that can still be captured (nothing once captured or voided)."""
        if self.voided or self.captured:
            return 0
        return max(self.authorized - self.released, 0)

    def refundable(self, pending_refunds: int = 0) -> int:
        """Captured money that can still be refunded, given refunds not yet settled."""
        return max(self.captured - self.refunded - pending_refunds - self.disputed, 0)


class ImpossibleMovement(Conflict):
    code = "impossible_movement"
    title = "This money movement contradicts the ledger (a capture after a void, or a void "
    "after a capture)"


def contradiction(balance: Balance, kind: EntryKind | str, amount_minor: int = 0) -> str:
    """Why the ledger cannot take a movement of `kind`; "" when it can.

    One authorisation ends one way: captured (the rest released) or voided, never both; and
    what is refunded, with what is held back by disputes, never passes what was captured.
    """
    kind = EntryKind(kind)
    if kind == EntryKind.CAPTURE and balance.voided:
        return "a capture of an authorisation already voided"
    if kind == EntryKind.VOID and balance.captured > 0:
        return "a void of an authorisation already captured"
    if kind == EntryKind.REFUND and (
        balance.refunded + balance.disputed + amount_minor > balance.captured
    ):
        return (
            f"a refund of {amount_minor} that would make refunded {balance.refunded} + disputed "
            f"{balance.disputed} pass captured {balance.captured}"
        )
    return ""


def ensure_possible(balance: Balance, kind: EntryKind | str, amount_minor: int = 0) -> None:
    reason = contradiction(balance, kind, amount_minor)
    if reason:
        raise ImpossibleMovement(f"The ledger refuses {reason}", kind=str(kind))


def balance_of(movements: Iterable[Movement]) -> Balance:
    totals = {kind: 0 for kind in EntryKind}
    for movement in movements:
        if movement.amount_minor < 0:
            raise ValueError("ledger amounts are never negative")
        totals[EntryKind(movement.kind)] += movement.amount_minor
    return Balance(
        authorized=totals[EntryKind.AUTHORIZATION],
        captured=totals[EntryKind.CAPTURE],
        released=totals[EntryKind.RELEASE] + totals[EntryKind.VOID],
        refunded=totals[EntryKind.REFUND] - totals[EntryKind.REFUND_REVERSAL],
        disputed=max(totals[EntryKind.DISPUTE] - totals[EntryKind.DISPUTE_CLOSED], 0),
        voided=totals[EntryKind.VOID] > 0,
    )


def payment_status_for(balance: Balance, current: PaymentStatus | str) -> PaymentStatus:
    """The payment status the ledger proves; unpaid statuses are kept as they are."""
    if balance.captured > 0:
        if balance.refunded >= balance.captured:
            return PaymentStatus.REFUNDED
        if balance.refunded > 0:
            return PaymentStatus.PARTIALLY_REFUNDED
        return PaymentStatus.PAID
    if balance.voided:
        return PaymentStatus.VOIDED
    if balance.authorized > 0:
        return PaymentStatus.AUTHORIZED
    return PaymentStatus(current)
