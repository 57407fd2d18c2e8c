"""Capture and cancel through the admin services against a real localstripe and Stripe SDK.

The customer's browser is played by the SDK (set the card, confirm); staff act through
`capture_order` and `cancel_order`; what Stripe then holds is read back from localstripe.
"""

from __future__ import annotations

import pytest

import stripe
from shopkeeper.catalog.models import Product
from shopkeeper.orders.models import Order
from shopkeeper.orders.rules import OrderPaidRefundFirst
from shopkeeper.orders.services import CaptureExceedsAuthorized, cancel_order, capture_order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.services import sync_from_stripe
from tests.factories import new_order

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db]


def place(*, capture: str) -> tuple[Order, str]:
    """2 x MUG at 10.50 + 5.00 shipping (26.00 USD), not paid yet."""
    placed = new_order(price="10.50", stock=10, capture=capture)
    return placed, placed.payments.get().intent_id


def pay(browser, intent_id: str) -> str:
    browser.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    return browser.v1.payment_intents.confirm(intent_id).status


def authorised(browser) -> tuple[Order, str]:
    order, intent_id = place(capture="manual")
    assert pay(browser, intent_id) == "requires_capture"
    order = sync_from_stripe(intent_id)
    assert order.payment_status == "authorized"
    return order, intent_id


def ledger(order: Order) -> list[tuple[str, int]]:
    return list(LedgerEntry.objects.filter(order=order).values_list("kind", "amount_minor"))


def test_given_authorised_order_when_captured_in_part_then_localstripe_captured_and_rest_released(
    localstripe_gateway, browser, settings, manager
):
    order, intent_id = authorised(browser)

    with pytest.raises(CaptureExceedsAuthorized):
        capture_order(order_number=order.number, amount="26.01", actor=manager)
    captured = capture_order(order_number=order.number, amount="20.00", actor=manager)

    assert captured.payment_status == "paid"
    assert ledger(order) == [("authorization", 2600), ("capture", 2000), ("release", 600)]
    at_stripe = browser.v1.payment_intents.retrieve(intent_id)
    assert at_stripe.status == "succeeded"
    # The return page reading the PaymentIntent again records nothing more.
    sync_from_stripe(intent_id)
    assert ledger(order) == [("authorization", 2600), ("capture", 2000), ("release", 600)]


def test_given_authorised_order_when_cancelled_then_voided_at_localstripe(
    localstripe_gateway, browser, settings, manager
):
    order, intent_id = authorised(browser)

    cancelled = cancel_order(order_number=order.number, reason="out of stock", actor=manager)

    assert (cancelled.status, cancelled.payment_status) == ("cancelled", "voided")
    assert ledger(order) == [("authorization", 2600), ("void", 2600)]
    assert browser.v1.payment_intents.retrieve(intent_id).status == "canceled"
    assert Product.objects.get(sku="MUG").stock == 10


def test_given_unpaid_order_when_cancelled_then_the_intent_can_no_longer_be_paid(
    localstripe_gateway, browser, settings, manager
):
    order, intent_id = place(capture="automatic")

    cancel_order(order_number=order.number, reason="customer asked", actor=manager)

    assert browser.v1.payment_intents.retrieve(intent_id).status == "canceled"
    with pytest.raises(stripe.StripeError):
        pay(browser, intent_id)


def test_given_customer_paid_before_the_cancel_then_recorded_paid_and_refused(
    localstripe_gateway, browser, settings, manager
):
    order, intent_id = place(capture="automatic")
    assert pay(browser, intent_id) == "succeeded"  # no webhook told us yet

    with pytest.raises(OrderPaidRefundFirst):
        cancel_order(order_number=order.number, reason="too late", actor=manager)

    paid = Order.objects.get(pk=order.pk)
    assert (paid.status, paid.payment_status) == ("processing", "paid")
    assert ("capture", 2600) in ledger(order)
