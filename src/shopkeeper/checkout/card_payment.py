"""Paying an order with a card the browser tokenised: the storefront's offline payment path.

With real Stripe the browser confirms the PaymentIntent itself (Payment Element). localstripe's
Stripe.js stand-in cannot: its card element only tokenises the card, and its
`confirmCardPayment` only performs the 3D Secure step. Offline, the browser therefore hands us
the tokenised card, we confirm the order's PaymentIntent with it through the gateway, and the
outcome goes through `apply_intent`, the same path as webhooks and the return page.
"""

from __future__ import annotations

import logging

from shopkeeper.errors import Conflict, PaymentDeclined, PaymentProviderUnavailable
from shopkeeper.orders.models import Order
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.capture_modes import CaptureMode, stripe_capture_method
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.selectors import current_payment, order_capture_mode
from shopkeeper.payments.services import apply_intent, record_payment_intent
from shopkeeper.payments.states import UNPAID_STATUSES, PaymentStatus
from shopkeeper.payments.stripe_statuses import IntentStatus

logger = logging.getLogger(__name__)

SOURCE = "storefront"
# PaymentIntent statuses in which a confirmation can still be attempted.
CONFIRMABLE = frozenset({IntentStatus.REQUIRES_PAYMENT_METHOD, IntentStatus.REQUIRES_CONFIRMATION})
# ...and those in which a new attempt is still possible, with a new PaymentIntent if needed.
RETRYABLE = CONFIRMABLE | {IntentStatus.REQUIRES_ACTION}


class OrderNotPayable(Conflict):
    code = "order_not_payable"
    title = "This order cannot be paid"


def ensure_payable(order: Order) -> None:
    """Only an open order whose money has not been taken can be paid."""
    if order.status == OrderStatus.CANCELLED or order.payment_status == PaymentStatus.VOIDED:
        raise OrderNotPayable("This order was cancelled and can no longer be paid")
    if order.payment_status not in UNPAID_STATUSES:
        raise OrderNotPayable("This order has already been paid")


def pay_with_card(
    *, order: Order, payment_method: str, gateway: PaymentGateway | None = None
) -> IntentSnapshot:
    """Confirm the order's payment with a tokenised card and record the outcome at once.

    A decline is recorded (the order shows the failed attempt) and raised as PaymentDeclined,
    whose message is safe to show the customer; the order stays payable.
    """
    gateway = gateway or get_gateway()
    ensure_payable(order)
    payment = _payment_to_confirm(order, gateway)
    try:
        intent = gateway.confirm_payment_intent(
            payment.intent_id,
            payment_method=payment_method,
            idempotency_key=f"payment-{payment.pk}-confirm-{payment_method}",
        )
    except PaymentDeclined:
        _record_current_state(payment, gateway)
        raise
    apply_intent(intent, source=SOURCE)
    return intent


def _payment_to_confirm(order: Order, gateway: PaymentGateway) -> Payment:
    """The order's PaymentIntent if it can still be confirmed, else a new one for the order.

    localstripe will not confirm a PaymentIntent again after a declined charge or an abandoned
    authentication, so such an attempt gets a fresh PaymentIntent; the order, its number and
    its reserved stock stay the same. A PaymentIntent that went through is never replaced.
    """
    payment = current_payment(order)
    if payment is not None:
        intent = gateway.retrieve_payment_intent(payment.intent_id)
        if intent.status in CONFIRMABLE and not intent.last_error:
            return payment
        if intent.status not in RETRYABLE:
            apply_intent(intent, source=SOURCE)
            raise OrderNotPayable(f"This order's payment is already {intent.status}")
        _retire(payment, gateway)
    attempt = Payment.objects.filter(order=order).count() + 1
    mode = order_capture_mode(order)
    intent = gateway.create_payment_intent(
        amount=order.grand_total,
        order_number=order.number,
        capture_method=stripe_capture_method(mode),
        idempotency_key=f"order-{order.number}-payment-intent-{attempt}",
    )
    return record_payment_intent(
        order=order, intent=intent, capture_on_fulfillment=mode == CaptureMode.ON_FULFILLMENT
    )


def _retire(payment: Payment, gateway: PaymentGateway) -> None:
    """Cancel a replaced PaymentIntent at Stripe first, so nobody can still pay it.

    If Stripe cannot confirm the cancellation the replacement is refused: one order must
    never have two PaymentIntents open for payment at once.
    """
    retired = gateway.cancel_payment_intent(
        payment.intent_id, idempotency_key=f"payment-{payment.pk}-retire"
    )
    Payment.objects.filter(pk=payment.pk).update(intent_status=retired.status)


def _record_current_state(payment: Payment, gateway: PaymentGateway) -> None:
    """Apply what Stripe now says about a declined attempt; the webhook will do it otherwise."""
    try:
        apply_intent(gateway.retrieve_payment_intent(payment.intent_id), source=SOURCE)
    except PaymentProviderUnavailable:
        logger.warning("Could not record the declined attempt on %s yet", payment.intent_id)
