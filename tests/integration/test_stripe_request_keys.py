"""The keys our use cases send to Stripe come from our own rows, so a resend is the same request.

Through the real `StripeGateway`, pointed at the recorder (tests/stripe_recorder.py); the
requests themselves are checked in tests/unit/test_stripe_requests.py.
"""

from __future__ import annotations

import pytest

from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.payments.stripe.client import STRIPE_API_VERSION, StripeGateway
from shopkeeper.refunds.services import request_refund
from tests import stripe_recorder as canned
from tests.factories import ADDRESS, paid_order, product, staff
from tests.stripe_recorder import StripeRecorder

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_gateway(recorder: StripeRecorder) -> StripeGateway:
    return StripeGateway(
        secret_key="sk_test_keys", webhook_secret="whsec_keys", api_base=recorder.url
    )


def test_placing_an_order_creates_its_payment_intent_keyed_by_the_order(recorder, stripe_gateway):
    product("MUG", price="10.00")

    placed = place_order(
        email="ada@example.com",
        items=[BasketItem("MUG", 2)],
        shipping_address=ADDRESS,
        gateway=stripe_gateway,
    )

    request = recorder.only()
    assert (request.method, request.path) == ("POST", "/v1/payment_intents")
    assert request.idempotency_key == f"order-{placed.order.number}-payment-intent"
    assert request.form["metadata[order_number]"] == placed.order.number
    assert request.form["amount"] == "2500" and request.stripe_version == STRIPE_API_VERSION


def test_a_refund_is_sent_keyed_by_its_row(recorder, stripe_gateway, fake_gateway):
    order = paid_order(fake_gateway)
    intent_id = order.payments.get().intent_id
    recorder.answer("POST", "/v1/refunds", canned.refund(payment_intent=intent_id, amount=500))

    refund = request_refund(
        order_number=order.number,
        actor=staff("manager"),
        amount="5.00",
        reason="requested_by_customer",
        gateway=stripe_gateway,
    )

    request = recorder.only()
    assert (request.method, request.path) == ("POST", "/v1/refunds")
    assert request.idempotency_key == refund.idempotency_key == f"refund-{refund.key}"
    assert (request.form["payment_intent"], request.form["amount"]) == (intent_id, "500")
    assert request.form["reason"] == "requested_by_customer"
