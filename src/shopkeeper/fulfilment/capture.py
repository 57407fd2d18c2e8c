"""Shipping an order captured on fulfilment (SHOPKEEPER_CAPTURE=on_fulfillment): the checks and
the capture's deferral, inside the shipment's transaction under the order's lock.

Any shipment of such an order needs its authorisation still open (`capture_rules`); the one that
leaves nothing to ship defers the capture of what shipped plus shipping (`fulfilment.jobs`).
Orders paid otherwise (charged at checkout, or authorised for staff to capture) ship as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings
from django.utils import timezone

from shopkeeper.fulfilment.capture_rules import (
    ShippedLine,
    amount_to_capture,
    ensure_authorisation_open,
)
from shopkeeper.fulfilment.jobs import defer_capture
from shopkeeper.fulfilment.rules import LineFulfilment, fulfillment_status
from shopkeeper.fulfilment.states import FulfillmentStatus
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import payment_balance
from shopkeeper.payments.states import PaymentStatus
from shopkeeper.payments.stripe_statuses import IntentStatus


def authorisation_to_capture(order: Order) -> Payment | None:
    """The locked order's authorisation to capture once shipped, if it is paid that way."""
    if order.payment_status != PaymentStatus.AUTHORIZED:
        return None
    for payment in Payment.objects.filter(order=order, capture_on_fulfillment=True).order_by("-id"):
        balance = payment_balance(payment)
        if balance.capturable or payment.intent_status == IntentStatus.CANCELED:
            return payment
    return None


def ensure_still_authorised(payment: Payment) -> None:
    """Refuse the shipment (409 authorization_lapsed) when the money can no longer be taken."""
    ensure_authorisation_open(
        stripe_voided=payment.intent_status == IntentStatus.CANCELED,
        authorised_at=payment.authorized_at,
        now=timezone.now(),
        expire_after=settings.SHOPKEEPER_AUTH_EXPIRE_AFTER,
    )


def capture_when_fulfilled(
    order: Order, payment: Payment, lines: Sequence[tuple[OrderLine, LineFulfilment]]
) -> int:
    """After a shipment: when nothing is left to ship, defer the capture; the amount (0: none)."""
    if fulfillment_status([facts for _, facts in lines]) != FulfillmentStatus.FULFILLED:
        return 0
    amount = amount_to_capture(
        [ShippedLine(line.unit_price_minor, facts.shipped) for line, facts in lines],
        shipping_minor=order.shipping_minor,
        capturable_minor=payment_balance(payment).capturable,
    )
    if amount:
        defer_capture(order_number=order.number, intent_id=payment.intent_id, amount_minor=amount)
    return amount
