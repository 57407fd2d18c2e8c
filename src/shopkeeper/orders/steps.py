"""Steps shared by the order's money operations (cancel, capture): the statuses they audit and
learning from Stripe why it refused a request. Their locks: `orders.locks`."""

from __future__ import annotations

from shopkeeper.errors import Conflict, PaymentRequestInvalid
from shopkeeper.orders.models import Order
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.services import apply_intent
from shopkeeper.payments.stripe_statuses import IntentStatus

SOURCE = "shopkeeper"


class PaymentProcessing(Conflict):
    code = "payment_processing"
    title = "The payment is being processed; try again once it has settled"


def statuses(order: Order) -> dict[str, str]:
    return {"status": str(order.status), "payment_status": str(order.payment_status)}


def learn_why_stripe_refused(
    intent_id: str, gateway: PaymentGateway, refusal: PaymentRequestInvalid
) -> IntentSnapshot:
    """Stripe refused a cancel or capture: fetch the PaymentIntent and record what it proves."""
    intent = gateway.retrieve_payment_intent(intent_id)
    apply_intent(intent, source="stripe")
    if intent.status == IntentStatus.PROCESSING:
        raise PaymentProcessing() from refusal
    return intent
