"""A payment that arrives for a cancelled order is given back: voided or refunded, never kept.

How it can happen: the customer's retry opens a new PaymentIntent while the order expires
(checkout records it after the expiry committed), or a payment lands on an order staff
cancelled. The webhook that brings it (`payment_intent.succeeded` or
`amount_capturable_updated`) records the money on the ledger as for any order and flags the
order `paid_after_cancel` (payments.services), in its own transaction. The worker's next run of
`orders.give_back_late_payments` then gives it back, under the PaymentIntent's job lock:

- authorised, not captured: the PaymentIntent is cancelled at Stripe (the authorisation voided,
  key `late-payment-<pi>-void`), recorded through `apply_intent`;
- captured: refunded in full through the refund engine (refunds.late_payments), one refund per
  PaymentIntent (its key is derived from the PaymentIntent);

once the money is back, the flag is resolved, with an `order.late_payment_returned` audit
entry under `SYSTEM`. The order stays
cancelled: its stock went back to the shelf when it was cancelled and may be sold already, so
the order is not revived (the customer can order again). The flag and its resolution stay in
the order's timeline; a refund Stripe leaves pending keeps the flag open until it settles.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

from django.db import transaction

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.audit.services import record_for_order
from shopkeeper.errors import PaymentRequestInvalid
from shopkeeper.orders.attention import PAID_AFTER_CANCEL, resolve_flag
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.models import Attention, Order
from shopkeeper.orders.states import OrderStatus
from shopkeeper.orders.steps import learn_why_stripe_refused
from shopkeeper.payments.gateway import PaymentGateway
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.selectors import payment_balance
from shopkeeper.payments.services import apply_intent
from shopkeeper.payments.stripe_statuses import IntentStatus
from shopkeeper.refunds.late_payments import refund_late_payment
from shopkeeper.refunds.rules import RefundStatus

logger = logging.getLogger(__name__)


class GiveBack(StrEnum):
    VOIDED = "voided"
    REFUNDED = "refunded"
    PENDING = "pending"  # sent, Stripe's answer to come; the next run looks again
    NOTHING = "nothing"  # nothing of it is held (given back already, or not cancelled)


@dataclass(frozen=True, slots=True)
class LatePayment:
    order_number: str
    intent_id: str


def late_payments() -> list[LatePayment]:
    """The open `paid_after_cancel` flags: few, read through the flags' own table."""
    rows = (
        Attention.objects.filter(code=PAID_AFTER_CANCEL, resolved_at__isnull=True)
        .order_by("id")
        .values_list("order__number", "subject")
    )
    return [LatePayment(number, intent_id) for number, intent_id in rows]


def give_back_late_payment(
    *, order_number: str, intent_id: str, gateway: PaymentGateway | None = None
) -> GiveBack:
    """Void or refund what PaymentIntent `intent_id` holds for the cancelled order; once. When
    nothing of it is held any more, the flag is resolved."""
    payment = Payment.objects.filter(intent_id=intent_id, order__number=order_number).first()
    if payment is None or payment.order.status != OrderStatus.CANCELLED:
        return GiveBack.NOTHING
    balance = payment_balance(payment)
    if balance.capturable > 0:
        return _void(payment, gateway or get_gateway())
    if balance.captured > balance.refunded:
        refund = refund_late_payment(order_number=order_number, intent_id=intent_id)
        if refund is not None and refund.status == RefundStatus.SUCCEEDED:
            _returned(payment, GiveBack.REFUNDED, refund_id=refund.pk)
            return GiveBack.REFUNDED
        return GiveBack.PENDING  # Stripe's answer to come (a webhook, the worker's retries)
    _returned(payment, None)
    return GiveBack.NOTHING


def _void(payment: Payment, gateway: PaymentGateway) -> GiveBack:
    intent_id = payment.intent_id
    try:
        intent = gateway.cancel_payment_intent(
            intent_id, idempotency_key=f"late-payment-{intent_id}-void"
        )
    except PaymentRequestInvalid as refusal:
        intent = learn_why_stripe_refused(intent_id, gateway, refusal)  # e.g. captured since
        if intent.status != IntentStatus.CANCELED:
            return GiveBack.PENDING  # the next run refunds what the ledger now has captured
    apply_intent(intent, source="shopkeeper")
    _returned(payment, GiveBack.VOIDED)
    return GiveBack.VOIDED


def _returned(payment: Payment, how: GiveBack | None, **details: object) -> None:
    """The money is back with the customer: audit how (once) and resolve the flag."""
    with transaction.atomic():
        order: Order = lock_order(pk=payment.order_id)
        note = f"Given back by Shopkeeper ({how or 'settled'})"
        resolved = resolve_flag(order, code=PAID_AFTER_CANCEL, subject=payment.intent_id, note=note)
        if resolved and how is not None:
            record_for_order(
                order,
                action="order.late_payment_returned",
                actor_label=SYSTEM,
                details={"payment_intent": payment.intent_id, "how": str(how), **details},
            )
            logger.warning("Order %s: late payment %s %s", order.number, payment.intent_id, how)
