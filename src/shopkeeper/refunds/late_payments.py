"""Refunding a payment taken for an order already cancelled (orders.late_payments decides when).

The refund engine's own path (a reserved row, then `execute_refund`: Stripe outside any lock,
the answer recorded with its ledger row and audit entry, an unknown answer settled by the
worker), with two differences: Shopkeeper asks (`SYSTEM`, no approval: the customer is owed
the money), and the row's key is derived from the PaymentIntent, so the unique key makes it one
refund per PaymentIntent however often this runs, and Stripe sees one idempotency key.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.orders.claims import ensure_no_claim
from shopkeeper.orders.locks import lock_order, lock_row
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import payment_balance
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.outcomes import audit_refund
from shopkeeper.refunds.rules import RESERVING_STATUSES, RefundStatus
from shopkeeper.refunds.services import execute_refund

# uuid5(namespace, PaymentIntent id): the key of the one refund of a late payment.
LATE_PAYMENT_REFUNDS = uuid.UUID("6f1c1d2e-8a53-4f0e-9a7b-2f4c5d6e7a80")
REASON = "other"  # Stripe's reasons do not fit; ours is in the note
NOTE = "Paid after the order was cancelled; refunded in full by Shopkeeper"


def late_payment_refund_key(intent_id: str) -> uuid.UUID:
    return uuid.uuid5(LATE_PAYMENT_REFUNDS, intent_id)


def refund_late_payment(*, order_number: str, intent_id: str) -> Refund | None:
    """Refund in full what PaymentIntent `intent_id` captured for the cancelled order, once;
    the refund (None: nothing of it is left to refund). Asked again, the same refund: sent
    again (same key) only if Stripe's answer is still unknown and no send is in flight."""
    key = late_payment_refund_key(intent_id)
    refund = Refund.objects.filter(key=key).first() or _reserve(order_number, intent_id, key)
    if refund is None:
        return None
    if refund.status == RefundStatus.PENDING and not refund.stripe_refund_id:
        return execute_refund(refund_id=refund.pk)
    return refund


def _reserve(order_number: str, intent_id: str, key: uuid.UUID) -> Refund | None:
    with transaction.atomic():
        order = lock_order(number=order_number)
        ensure_no_claim(order)
        payment = lock_row(order, Payment.objects.filter(intent_id=intent_id))
        if payment is None:
            return None
        existing = Refund.objects.filter(key=key).first()
        if existing is not None:  # reserved by another run meanwhile
            return existing
        held_back = Refund.objects.filter(payment=payment, status__in=RESERVING_STATUSES)
        reserved = int(held_back.aggregate(total=Sum("amount_minor"))["total"] or 0)
        amount = payment_balance(payment).refundable(reserved)
        if amount <= 0:
            return None
        now = timezone.now()
        refund = Refund.objects.create(
            key=key,
            order=order,
            payment=payment,
            status=RefundStatus.PENDING,
            amount_minor=amount,
            currency=payment.currency,
            reason=REASON,
            note=NOTE,
            created_at=now,
            updated_at=now,
        )
        audit_refund(
            order,
            refund,
            "requested",
            actor_label=SYSTEM,
            after={"status": refund.status},
            reason=REASON,
            note=NOTE,
            payment_intent=intent_id,
        )
    return refund
