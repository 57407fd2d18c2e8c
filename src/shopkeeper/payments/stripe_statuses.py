"""Stripe's status vocabulary, as the snapshots of the port carry it. Pure Python.

These are Stripe's words (the API version `payments/stripe/client.py` pins), not ours: our own
states are `PaymentStatus`, `RefundStatus` and the order's. Nothing outside this module spells a
Stripe status as a bare string.
"""

from __future__ import annotations

from enum import StrEnum


class IntentStatus(StrEnum):
    """A PaymentIntent's status."""

    REQUIRES_PAYMENT_METHOD = "requires_payment_method"
    REQUIRES_CONFIRMATION = "requires_confirmation"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    REQUIRES_CAPTURE = "requires_capture"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"


class ChargeStatus(StrEnum):
    SUCCEEDED = "succeeded"
    PENDING = "pending"
    FAILED = "failed"


class StripeRefundStatus(StrEnum):
    """A Stripe Refund's status (ours is `refunds.rules.RefundStatus`)."""

    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class DisputeStatus(StrEnum):
    WARNING_NEEDS_RESPONSE = "warning_needs_response"
    WARNING_UNDER_REVIEW = "warning_under_review"
    WARNING_CLOSED = "warning_closed"
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"
    PREVENTED = "prevented"


_I = IntentStatus
# The PaymentIntent is done: nothing more will move money through it (the one copy).
FINISHED_INTENT_STATUSES = frozenset({_I.SUCCEEDED, _I.CANCELED})
# The PaymentIntent's latest charge holds the money (authorised or captured).
MONEY_HOLDING_INTENT_STATUSES = frozenset({_I.REQUIRES_CAPTURE, _I.SUCCEEDED})
# A refund that has taken, or may still take, money back.
LIVE_REFUND_STATUSES = frozenset(
    {StripeRefundStatus.PENDING, StripeRefundStatus.REQUIRES_ACTION, StripeRefundStatus.SUCCEEDED}
)
