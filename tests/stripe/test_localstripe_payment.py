"""Checkout and payment against a real localstripe, through the real Stripe SDK.

The customer's browser is played by the Stripe SDK in the test: set the card on the
PaymentIntent (`modify`), then `confirm`, as STRIPE_NOTES describes. What Shopkeeper learns
goes through `sync_from_stripe` (the return page) or localstripe's own signed webhooks.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest
from django.conf import settings

import stripe
from shopkeeper.checkout.card_payment import pay_with_card
from shopkeeper.demo.localstripe_server import register_webhook
from shopkeeper.errors import PaymentDeclined
from shopkeeper.money import Money
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.payments.services import apply_intent, sync_from_stripe
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import ADDRESS, product

pytestmark = pytest.mark.localstripe


def confirm(browser, intent_id: str, payment_method: str):
    browser.v1.payment_intents.update(intent_id, params={"payment_method": payment_method})
    return browser.v1.payment_intents.confirm(intent_id)


def checkout(client, *, quantity: int = 2) -> dict:
    product("MUG", price="10.50", stock=5)
    payload = {
        "email": "ada@example.com",
        "items": [{"sku": "MUG", "quantity": quantity}],
        "shipping_address": ADDRESS,
    }
    response = client.post(
        "/api/checkout", data=json.dumps(payload), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def ledger(number: str) -> list[tuple[str, int]]:
    rows = LedgerEntry.objects.filter(order__number=number)
    return sorted(rows.values_list("kind", "amount_minor"))


@pytest.mark.django_db
def test_given_checkout_when_card_confirmed_and_return_page_syncs_then_paid_with_ledger(
    client, localstripe_gateway, browser
):
    placed = checkout(client)
    intent_id = placed["payment"]["payment_intent_id"]
    at_stripe = browser.v1.payment_intents.retrieve(intent_id)
    assert (at_stripe.amount, at_stripe.currency, at_stripe.capture_method) == (
        2600,
        "usd",
        "automatic",
    )
    assert at_stripe.metadata["order_number"] == placed["order"]["number"]
    assert at_stripe.client_secret == placed["payment"]["client_secret"]

    assert confirm(browser, intent_id, "pm_card_visa").status == "succeeded"
    order = sync_from_stripe(intent_id, client_secret=placed["payment"]["client_secret"])

    assert (order.status, order.payment_status) == ("processing", "paid")
    assert ledger(order.number) == [("authorization", 2600), ("capture", 2600)]
    payment = Payment.objects.get(intent_id=intent_id)
    assert payment.charge_id.startswith("ch_")
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert set(
        LedgerEntry.objects.filter(order=order).values_list(
            "stripe_payment_intent_id", "stripe_charge_id", "currency"
        )
    ) == {(intent_id, payment.charge_id, "USD")}


@pytest.mark.django_db
def test_given_declined_card_when_synced_then_failed_and_the_order_can_still_be_paid(
    client, localstripe_gateway, browser
):
    placed = checkout(client)
    intent_id = placed["payment"]["payment_intent_id"]
    with pytest.raises(stripe.CardError):
        confirm(browser, intent_id, "pm_card_chargeCustomerFail")

    order = sync_from_stripe(intent_id, client_secret=placed["payment"]["client_secret"])

    assert (order.status, order.payment_status) == ("pending", "failed")
    payment = Payment.objects.get(intent_id=intent_id)
    assert payment.last_error == "Your card was declined."
    assert payment.charge_id == ""  # the failed charge holds no money
    assert not LedgerEntry.objects.exists()

    # Stripe lets the same PaymentIntent be confirmed again with another card; localstripe
    # 1.15.10 refuses (its failed charge stays the latest), so the offline storefront gives
    # the order a new PaymentIntent. The order, its number and its stock stay the same.
    with pytest.raises(stripe.InvalidRequestError):
        confirm(browser, intent_id, "pm_card_visa")
    pay_with_card(order=order, payment_method="pm_card_visa")

    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("processing", "paid")
    assert ledger(order.number) == [("authorization", 2600), ("capture", 2600)]
    assert order.payments.count() == 2
    assert localstripe_gateway.retrieve_payment_intent(intent_id).status == "canceled"
    # The first attempt's news, heard late, changes nothing.
    apply_intent(localstripe_gateway.retrieve_payment_intent(intent_id), source="webhook")
    order.refresh_from_db()
    assert order.payment_status == "paid"


@pytest.mark.django_db
def test_given_declined_card_through_the_gateway_then_payment_declined_is_raised(
    client, localstripe_gateway
):
    placed = checkout(client)

    with pytest.raises(PaymentDeclined):
        localstripe_gateway.confirm_payment_intent(
            placed["payment"]["payment_intent_id"],
            payment_method="pm_card_chargeCustomerFail",
            idempotency_key="declined-1",
        )


@pytest.mark.django_db
def test_given_manual_capture_when_confirmed_then_authorized_then_partial_capture_releases_rest(
    client, localstripe_gateway, browser, settings
):
    settings.SHOPKEEPER_CAPTURE = "manual"
    placed = checkout(client)
    intent_id = placed["payment"]["payment_intent_id"]

    assert confirm(browser, intent_id, "pm_card_visa").status == "requires_capture"
    order = sync_from_stripe(intent_id, client_secret=placed["payment"]["client_secret"])

    assert (order.status, order.payment_status) == ("processing", "authorized")
    assert ledger(order.number) == [("authorization", 2600)]

    captured = localstripe_gateway.capture_payment_intent(
        intent_id, amount=Money(2000, "USD"), idempotency_key="capture-test"
    )
    assert (captured.status, captured.amount_received) == ("succeeded", 2000)
    order = apply_intent(captured, source="test")

    assert order.payment_status == "paid"
    assert ledger(order.number) == [("authorization", 2600), ("capture", 2000), ("release", 600)]
    # The return page later reads the same PaymentIntent again: nothing more is recorded.
    sync_from_stripe(intent_id, client_secret=placed["payment"]["client_secret"])
    assert ledger(order.number) == [("authorization", 2600), ("capture", 2000), ("release", 600)]


@pytest.mark.django_db
def test_given_authorised_when_canceled_at_stripe_then_voided(
    client, localstripe_gateway, browser, settings
):
    settings.SHOPKEEPER_CAPTURE = "manual"
    placed = checkout(client)
    intent_id = placed["payment"]["payment_intent_id"]
    confirm(browser, intent_id, "pm_card_visa")
    sync_from_stripe(intent_id)

    order = apply_intent(
        localstripe_gateway.cancel_payment_intent(intent_id, idempotency_key="cancel-test"),
        source="test",
    )

    assert order.payment_status == "voided"
    assert ledger(order.number) == [("authorization", 2600), ("void", 2600)]


# --- localstripe's own webhooks --------------------------------------------------------------


@pytest.fixture
def webhooks_to(localstripe_url):
    """Point localstripe's webhooks at a URL for one test, then mute them again."""
    name = "shopkeeper-test"

    def point(url: str) -> None:
        register_webhook(localstripe_url, url=url, secret=settings.STRIPE_WEBHOOK_SECRET, name=name)

    yield point
    # localstripe cannot forget a webhook: keep it, but for an event type it never sends.
    body = urllib.parse.urlencode(
        {"url": "http://127.0.0.1:9/", "secret": "whsec_muted", "events[0]": "shopkeeper.muted"}
    ).encode()
    request = urllib.request.Request(
        f"{localstripe_url}/_config/webhooks/{name}", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def events_about(intent_id: str) -> list[WebhookEvent]:
    """This test's events: localstripe also delivers news of other tests' PaymentIntents."""
    return [
        event
        for event in WebhookEvent.objects.order_by("id")
        if event.payload["data"]["object"].get("id") == intent_id
    ]


def wait_for(condition, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_given_localstripe_webhooks_when_card_confirmed_then_the_webhook_alone_marks_paid(
    client, live_server, localstripe_gateway, browser, webhooks_to, background_worker
):
    webhooks_to(live_server.url + "/webhooks/stripe")
    placed = checkout(client)
    number, intent_id = placed["order"]["number"], placed["payment"]["payment_intent_id"]

    confirm(browser, intent_id, "pm_card_visa")

    assert wait_for(lambda: Order.objects.get(number=number).payment_status == "paid")
    order = Order.objects.get(number=number)
    assert order.status == "processing"
    assert ledger(number) == [("authorization", 2600), ("capture", 2600)]
    (event,) = events_about(intent_id)
    assert (event.type, event.status) == ("payment_intent.succeeded", "processed")
    assert event.event_id.startswith("evt_")
    assert Payment.objects.get(intent_id=intent_id).charge_id.startswith("ch_")


@pytest.mark.django_db(transaction=True)
def test_given_localstripe_webhooks_when_card_declined_then_the_webhook_marks_failed(
    client, live_server, localstripe_gateway, browser, webhooks_to, background_worker
):
    webhooks_to(live_server.url + "/webhooks/stripe")
    placed = checkout(client)
    number, intent_id = placed["order"]["number"], placed["payment"]["payment_intent_id"]

    with pytest.raises(stripe.CardError):
        confirm(browser, intent_id, "pm_card_chargeCustomerFail")

    assert wait_for(lambda: Order.objects.get(number=number).payment_status == "failed")
    assert [event.type for event in events_about(intent_id)] == ["payment_intent.payment_failed"]
    assert not LedgerEntry.objects.exists()
