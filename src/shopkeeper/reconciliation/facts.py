"""What reconciliation compares, and what it finds. Pure Python: no Django, no Stripe.

Our side of one PaymentIntent (`LedgerFacts`) and Stripe's (`StripeFacts`) are gathered by
`reconciliation.services`; `compare` turns them into `Difference`s, each saying how it can be
put right (`Fix`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from shopkeeper.money import Money
from shopkeeper.payments.gateway import (
    ChargeSnapshot,
    DisputeSnapshot,
    IntentSnapshot,
    RefundSnapshot,
)


class Kind(StrEnum):
    PAYMENT_MISSING_HERE = "payment_missing_here"
    PAYMENT_MISSING_AT_STRIPE = "payment_missing_at_stripe"
    PAYMENT_FLAGGED = "payment_flagged"
    INTENT_STATUS = "intent_status"
    MOVEMENT_MISSING = "movement_missing"
    MOVEMENT_NOT_AT_STRIPE = "movement_not_at_stripe"
    MOVEMENT_AMOUNT = "movement_amount"
    REFUND_MISSING_HERE = "refund_missing_here"
    REFUND_MISSING_AT_STRIPE = "refund_missing_at_stripe"
    REFUND_IN_DOUBT = "refund_in_doubt"
    REFUND_NOT_SENT = "refund_not_sent"
    REFUND_STATUS = "refund_status"
    REFUND_AMOUNT = "refund_amount"
    REFUND_LEDGER = "refund_ledger"
    DISPUTE_MISSING_HERE = "dispute_missing_here"
    DISPUTE_MISSING_AT_STRIPE = "dispute_missing_at_stripe"
    DISPUTE_STATUS = "dispute_status"
    DISPUTE_AMOUNT = "dispute_amount"
    NEEDS_ATTENTION = "needs_attention"


DESCRIPTIONS = {
    Kind.PAYMENT_MISSING_HERE: "Stripe holds money for one of our orders on a PaymentIntent we "
    "have no record of",
    Kind.PAYMENT_MISSING_AT_STRIPE: "Stripe does not know this PaymentIntent",
    Kind.PAYMENT_FLAGGED: "The payment is flagged: Stripe's amount, currency or order does not "
    "match the order, so nothing is recorded automatically",
    Kind.INTENT_STATUS: "The PaymentIntent's status differs",
    Kind.MOVEMENT_MISSING: "Stripe shows money moved that our ledger lacks",
    Kind.MOVEMENT_NOT_AT_STRIPE: "Our ledger shows money moved that Stripe does not",
    Kind.MOVEMENT_AMOUNT: "The amount moved differs",
    Kind.REFUND_MISSING_HERE: "A refund at Stripe is not in our books",
    Kind.REFUND_MISSING_AT_STRIPE: "A refund in our books is not at Stripe",
    Kind.REFUND_IN_DOUBT: "A refund whose answer was lost reached Stripe",
    Kind.REFUND_NOT_SENT: "A pending refund never reached Stripe",
    Kind.REFUND_STATUS: "The refund's status differs",
    Kind.REFUND_AMOUNT: "The refund's amount differs",
    Kind.REFUND_LEDGER: "The ledger does not hold what Stripe refunded",
    Kind.DISPUTE_MISSING_HERE: "A dispute at Stripe is not in our books",
    Kind.DISPUTE_MISSING_AT_STRIPE: "A dispute in our books is not at Stripe",
    Kind.DISPUTE_STATUS: "The dispute's status differs",
    Kind.DISPUTE_AMOUNT: "The disputed amount differs",
    Kind.NEEDS_ATTENTION: "The order is flagged for a person: Stripe's news contradicted our "
    "books or could not be booked",
}


class Fix(StrEnum):
    APPLY_INTENT = "apply_intent"  # payments.services.apply_intent
    SETTLE_REFUND = "settle_refund"  # refunds.settlement.settle_refund
    RESEND_REFUND = "resend_refund"  # refunds.services.execute_refund, same idempotency key
    APPLY_DISPUTE = "apply_dispute"  # disputes.services.record_dispute
    NONE = "none"  # a person must look


@dataclass(frozen=True, slots=True)
class OurRefund:
    id: int
    key: str
    status: str
    amount: int
    stripe_refund_id: str = ""
    # Pending without Stripe's answer, but touched so recently that its request may still be
    # under way: not called lost yet.
    in_flight: bool = False


@dataclass(frozen=True, slots=True)
class OurDispute:
    id: str  # Stripe's dispute id
    status: str  # our dispute row's status; "" when only the ledger knows it
    opened: int  # amount the ledger holds back for it
    released: int  # amount the ledger gave back when it closed in the shop's favour


@dataclass(frozen=True, slots=True)
class LedgerFacts:
    """Our side of one PaymentIntent: the payment row, its ledger, its refund rows."""

    intent_id: str
    order_number: str
    intent_status: str
    currency: str
    authorization: int = 0
    capture: int = 0
    release: int = 0
    void: int = 0
    refunds: Mapping[str, int] = field(default_factory=dict)  # net per Stripe refund id
    disputes: tuple[OurDispute, ...] = ()
    refund_rows: tuple[OurRefund, ...] = ()
    flag_reason: str = ""  # set when the payment is flagged
    # The order's open flags for a person (code, subject, detail), given with its latest payment.
    attention: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class StripeFacts:
    intent: IntentSnapshot
    charges: tuple[ChargeSnapshot, ...] = ()
    refunds: tuple[RefundSnapshot, ...] = ()
    disputes: tuple[DisputeSnapshot, ...] = ()


@dataclass(frozen=True, slots=True)
class Difference:
    kind: Kind
    intent_id: str
    order_number: str
    ours: str
    stripe: str
    fix: Fix = Fix.NONE
    # What it is about: a ledger movement, or Stripe's refund or dispute id, or "refund 12".
    subject: str = ""
    stripe_id: str = ""
    refund_id: int | None = None

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.kind, self.intent_id, self.subject)

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.kind]


def difference(
    ours: LedgerFacts,
    kind: Kind,
    mine: str,
    theirs: str,
    *,
    fix: Fix = Fix.NONE,
    stripe_id: str = "",
    refund_id: int | None = None,
    subject: str = "",
) -> Difference:
    """A difference about a movement, Stripe's refund or dispute, or one of our refunds."""
    return Difference(
        kind,
        ours.intent_id,
        ours.order_number,
        mine,
        theirs,
        fix=fix,
        subject=subject or stripe_id or (f"refund {refund_id}" if refund_id else ""),
        stripe_id=stripe_id,
        refund_id=refund_id,
    )


def money_text(minor: int, currency: str) -> str:
    try:
        return str(Money(minor, currency))
    except ValueError:
        return f"{minor} {currency}"
