"""A customer buys in a real browser, offline: storefront → localstripe's Stripe.js → paid order.

The live server runs in this process and talks to a real localstripe process (through the
`localstripe_gateway` fixture); localstripe's webhooks are pointed at the live server, so the
order learns its payment both from the return page and from the webhook.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from django.conf import settings
from playwright.sync_api import Browser, Page, expect

from shopkeeper.catalog.models import Product
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import Payment
from shopkeeper.stripe_events.models import WebhookEvent
from tests.browser.csp_watch import watch_csp_violations
from tests.browser.storefront_pages import DECLINED_CARD, GOOD_CARD, buy_until_pay_page, pay_with

pytestmark = [
    pytest.mark.browser,
    pytest.mark.localstripe,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def page(chromium: Browser, shop: str) -> Iterator[Page]:
    context = chromium.new_context(base_url=shop, viewport={"width": 1200, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    violations = watch_csp_violations(page)
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert violations == [], f"Content-Security-Policy violations: {violations}"


def wait_for_webhooks(order: Order, expected: list[str], timeout: float = 15.0) -> None:
    """Wait until localstripe's webhooks (sent a second after each event) were processed.

    This proves the webhook path end to end, and keeps late deliveries from reaching the live
    server while the test database is being flushed.
    """
    intents = set(Payment.objects.filter(order=order).values_list("intent_id", flat=True))
    deadline = time.monotonic() + timeout
    while True:
        seen = sorted(
            event.type
            for event in WebhookEvent.objects.filter(type__startswith="payment_intent.")
            if event.payload["data"]["object"]["id"] in intents
            and event.status == WebhookEvent.Status.PROCESSED
        )
        if seen == sorted(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert seen == sorted(expected)


def test_given_a_product_when_a_customer_buys_it_with_a_good_card_then_the_order_is_paid(
    page: Page,
) -> None:
    number = buy_until_pay_page(page)
    expect(page.locator("script[src$='/js.stripe.com/v3/']")).to_have_count(1)

    pay_with(page, GOOD_CARD)

    expect(page).to_have_url(re.compile(r"/checkout/complete\?payment_intent=pi_\w+&"))
    status = page.get_by_test_id("order-status")
    expect(status).to_contain_text("Payment received")
    expect(status).to_have_attribute("data-payment-status", "paid")
    expect(page.get_by_role("main")).to_contain_text(number)
    expect(page.get_by_test_id("order-total")).to_have_text("30.00 USD")
    expect(page.get_by_test_id("cart-count")).to_have_count(0)  # the cart was emptied
    order = Order.objects.get(number=number)
    assert (order.status, order.payment_status) == ("processing", "paid")
    assert Product.objects.get(sku="MUG").stock == 3
    assert settings.STRIPE_SECRET_KEY not in page.content()
    wait_for_webhooks(order, ["payment_intent.succeeded"])
    order.refresh_from_db()
    assert order.payment_status == "paid"


def test_given_a_declined_card_when_the_customer_retries_with_a_good_one_then_the_order_is_paid(
    page: Page,
) -> None:
    number = buy_until_pay_page(page)

    pay_with(page, DECLINED_CARD)

    message = page.locator("#payment-message")
    expect(message).to_have_text("Your card was declined.")
    expect(page).to_have_url(re.compile(rf"/checkout/pay/{number}$"))
    pay_button = page.get_by_role("button", name=re.compile(r"^Pay "))
    expect(pay_button).to_be_enabled()
    assert Order.objects.get(number=number).payment_status == "failed"

    pay_with(page, GOOD_CARD)

    expect(page.get_by_test_id("order-status")).to_have_attribute("data-payment-status", "paid")
    order = Order.objects.get(number=number)
    assert order.payment_status == "paid"
    assert Order.objects.count() == 1  # the same order, not a new one
    assert Payment.objects.filter(order=order).count() == 2  # a fresh PaymentIntent for the retry
    assert Product.objects.get(sku="MUG").stock == 3
    # The late "payment_failed" of the first attempt must not undo the payment.
    wait_for_webhooks(order, ["payment_intent.payment_failed", "payment_intent.succeeded"])
    order.refresh_from_db()
    assert order.payment_status == "paid"


def test_given_the_csp_when_a_page_runs_inline_script_then_chromium_blocks_and_reports_it(
    chromium: Browser, shop: str
) -> None:
    """The watch the other tests rely on sees a violation, and the policy is enforced."""
    context = chromium.new_context(base_url=shop)
    page = context.new_page()
    violations = watch_csp_violations(page)
    page.goto("/")
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.injected = true"; document.head.appendChild(s); }"""
    )
    page.wait_for_timeout(200)
    injected = page.evaluate("() => window.injected === true")
    context.close()

    assert injected is False
    assert any("inline script" in message for message in violations), violations


def test_given_the_csp_when_opening_the_api_docs_then_swagger_ui_renders(
    page: Page, shop: str
) -> None:
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(shop) else elsewhere.append(request.url),
    )
    page.goto("/api/docs")

    expect(page.locator("#swagger-ui .opblock").first).to_be_visible()
    assert elsewhere == [], f"/api/docs fetched from outside the shop: {elsewhere}"
