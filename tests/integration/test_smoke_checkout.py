"""Given a product, when a customer checks out and pays, then the order is paid (fake gateway)."""

import pytest

from shopkeeper.checkout.services import BasketItem, place_order
from shopkeeper.orders.lookups import get_order
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.payments.services import apply_intent
from tests.factories import address, product

ADDRESS = address(country="us")


@pytest.mark.django_db
def test_checkout_then_payment_marks_order_paid(fake_gateway):
    product("MUG", price="10.50", stock=3)
    placed = place_order(
        email="ada@example.com", items=[BasketItem("MUG", 2)], shipping_address=ADDRESS
    )
    assert placed.order.grand_total_minor == 2100 + 500

    apply_intent(fake_gateway.pay(placed.payment.intent_id), source="test")

    detail = order_detail(get_order(placed.order.number))
    assert (detail["status"], detail["payment_status"]) == ("processing", "paid")
    assert detail["captured"] == "26.00" and detail["refundable_minor"] == 2600
