"""The return page's path: `sync_from_stripe` retrieves the PaymentIntent and applies it."""

import pytest

from shopkeeper.catalog.services import create_product
from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.selectors import order_detail
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.services import PaymentNotFound, sync_from_stripe

ADDRESS = {
    "name": "Ada",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "1",
    "country": "US",
}

pytestmark = pytest.mark.django_db


@pytest.fixture
def placed():
    create_product(sku="MUG", name="Mug", price="10.50", currency="USD", stock=5)
    return place_order(
        email="ada@example.com", items=[BasketItem("MUG", 2)], shipping_address=ADDRESS
    )


def test_given_paid_intent_when_synced_with_its_secret_then_order_paid(placed, fake_gateway):
    fake_gateway.pay(placed.payment.intent_id)

    order = sync_from_stripe(placed.payment.intent_id, client_secret=placed.payment.client_secret)

    assert (order.status, order.payment_status) == ("processing", "paid")
    assert order_detail(order)["captured_minor"] == 2600


def test_given_wrong_secret_when_synced_then_not_found_and_stripe_not_called(placed, fake_gateway):
    fake_gateway.pay(placed.payment.intent_id)
    calls_before = list(fake_gateway.calls)

    with pytest.raises(PaymentNotFound):
        sync_from_stripe(placed.payment.intent_id, client_secret="pi_other_secret_x")

    assert fake_gateway.calls == calls_before
    assert not LedgerEntry.objects.exists()


def test_given_unknown_intent_when_synced_then_not_found(fake_gateway):
    with pytest.raises(PaymentNotFound):
        sync_from_stripe("pi_unknown", client_secret="pi_unknown_secret")
    assert not any(op == "retrieve_payment_intent" for op, _ in fake_gateway.calls)
