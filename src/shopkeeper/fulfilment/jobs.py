"""The capture after an order's last shipment (SHOPKEEPER_CAPTURE=on_fulfillment), in the worker.

`fulfilment.capture` defers `fulfilment.capture_fulfilled_order` in the transaction of the
shipment that leaves nothing to ship, with the PaymentIntent's job lock (`stripe:<pi>`, as its
webhooks and the lapse job). The job captures through the staff's own use case
(`orders.capture.capture_order`, audited under SYSTEM) the amount fixed at shipping, so every try
sends Stripe the same request with the same idempotency key; then closes the order if it is done.

Stripe unavailable (the outcome unknown) or another capture or cancel under way: the next step is
scheduled after CAPTURE_RETRY_DELAYS[step] seconds, one job per step (1, 5, 30 minutes, 2, 6
hours). After the last, or at once when Stripe or the order refuses (an authorisation Stripe
let lapse), the order is flagged `capture_on_fulfillment_failed` for a person. Captured or
voided meanwhile by someone else: nothing more is captured (the order closes if it is done; a
void is flagged: goods left, no money).
"""

from __future__ import annotations

import logging

from django.db import transaction
from procrastinate.contrib.django import app

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.errors import DomainError, PaymentProviderUnavailable
from shopkeeper.fulfilment.closing import close_if_done
from shopkeeper.jobs.defer import defer_in_transaction
from shopkeeper.money import Money
from shopkeeper.orders.attention import (
    CAPTURE_ON_FULFILLMENT_FAILED,
    OrderNeedsAttention,
    flag_order,
)
from shopkeeper.orders.capture import capture_order
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.operations import OperationInProgress
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import payment_balance

logger = logging.getLogger(__name__)

# Seconds before each retry of the capture: 1 + len(CAPTURE_RETRY_DELAYS) tries in all.
CAPTURE_RETRY_DELAYS: tuple[int, ...] = (60, 300, 1800, 7200, 21600)
RETRIED = (PaymentProviderUnavailable, OperationInProgress)


@app.task(name="fulfilment.capture_fulfilled_order", queue="orders")
def capture_fulfilled_order(order_number: str, intent_id: str, amount_minor: int, step: int) -> str:
    """Capture `amount_minor` of `intent_id` for the fully shipped order; what was done."""
    payment = Payment.objects.get(intent_id=intent_id)
    balance = payment_balance(payment)
    if balance.captured:
        _close_if_done(order_number)  # captured by staff after the last shipment
        return "captured already"
    if not balance.capturable:
        _give_up(order_number, intent_id, "its authorisation was voided before the capture")
        return "flagged"
    amount = Money(amount_minor, payment.currency)
    try:
        capture_order(
            order_number=order_number,
            amount=amount.to_decimal_string(),
            actor=None,
            actor_label=SYSTEM,
        )
    except RETRIED as error:
        return _retry_or_give_up(order_number, intent_id, amount_minor, step, error)
    except OrderNeedsAttention:
        return "flagged"  # the capture use case flagged it itself
    except DomainError as refusal:
        if payment_balance(payment).captured:
            _close_if_done(order_number)  # captured by staff, while this job ran
            return "captured already"
        _give_up(order_number, intent_id, f"the capture was refused: {refusal.detail}")
        return "flagged"
    _close_if_done(order_number)
    return "captured"


def _close_if_done(order_number: str) -> None:
    with transaction.atomic():
        close_if_done(lock_order(number=order_number), actor=None, actor_label=SYSTEM)


def defer_capture(*, order_number: str, intent_id: str, amount_minor: int, step: int = 0) -> None:
    """Schedule try `step` of the capture (now for the first), inside the caller's transaction."""
    defer_in_transaction(
        capture_fulfilled_order,
        lock=f"stripe:{intent_id}",
        schedule_in_seconds=CAPTURE_RETRY_DELAYS[step - 1] if step else None,
        order_number=order_number,
        intent_id=intent_id,
        amount_minor=amount_minor,
        step=step,
    )


def _retry_or_give_up(
    order_number: str, intent_id: str, amount_minor: int, step: int, error: DomainError
) -> str:
    if step >= len(CAPTURE_RETRY_DELAYS):
        _give_up(order_number, intent_id, f"{step + 1} tries failed, the last: {error.detail}")
        return "flagged"
    logger.warning(
        "Order %s: capture on fulfilment of %s failed (%s); try %s in %s s",
        order_number,
        intent_id,
        error.detail,
        step + 2,
        CAPTURE_RETRY_DELAYS[step],
    )
    with transaction.atomic():
        defer_capture(
            order_number=order_number,
            intent_id=intent_id,
            amount_minor=amount_minor,
            step=step + 1,
        )
    return "retrying"


def _give_up(order_number: str, intent_id: str, why: str) -> None:
    with transaction.atomic():
        flag_order(
            lock_order(number=order_number),
            code=CAPTURE_ON_FULFILLMENT_FAILED,
            subject=intent_id,
            detail=f"The order has shipped but its payment was not captured: {why}. "
            "Capture it by hand or contact the customer.",
        )
