"""Steps shared by the order's money operations (cancel, capture): locks in the fixed order
(order, then payments), and learning from Stripe why it refused a request."""

from __future__ import annotations

from django.utils import timezone

from shopkeeper.errors import Conflict, PaymentRequestInvalid
from shopkeeper.orders.lookups import OrderNotFound
from shopkeeper.orders.models import Order
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.models import Payment
from shopkeeper.payments.services import apply_intent

# PaymentIntent statuses from which nothing more can happen to the money.
FINISHED_INTENT_STATUSES = frozenset({"canceled", "succeeded"})
SOURCE = "shopkeeper"


class PaymentProcessing(Conflict):
    code = "payment_processing"
    title = "The payment is being processed; try again once it has settled"


def locked_order(number: str) -> Order:
    order = Order.objects.select_for_update().filter(number=number).first()
    if order is None:
        raise OrderNotFound(f"No order {number!r}", number=number)
    return order


def locked_payments(order: Order) -> list[Payment]:
    return list(Payment.objects.select_for_update().filter(order=order).order_by("id"))


def statuses(order: Order) -> dict[str, str]:
    return {"status": str(order.status), "payment_status": str(order.payment_status)}


def refresh_payment(payment: Payment, intent: IntentSnapshot) -> None:
    payment.intent_status = intent.status
    payment.charge_id = intent.charge_id or payment.charge_id
    payment.card_brand = intent.card_brand or payment.card_brand
    payment.card_last4 = intent.card_last4 or payment.card_last4
    payment.updated_at = timezone.now()
    payment.save(
        update_fields=["intent_status", "charge_id", "card_brand", "card_last4", "updated_at"]
    )


def learn_why_stripe_refused(
    intent_id: str, gateway: PaymentGateway, refusal: PaymentRequestInvalid
) -> IntentSnapshot:
    """Stripe refused a cancel or capture: fetch the PaymentIntent and record what it proves."""
    intent = gateway.retrieve_payment_intent(intent_id)
    apply_intent(intent, source="stripe")
    if intent.status == "processing":
        raise PaymentProcessing() from refusal
    return intent
