"""An order's whole life in real browsers (issue 11): a customer buys on the storefront (offline,
localstripe), staff ship it with a tracking number, the customer opens the link from the
confirmation mail on another device, sees the shipment and asks to return one mug; staff find the
return in the queue, receive it with restock and refund it; the customer's mails, read from a real
SMTP server, hold the shipment's tracking number and the refund."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import override_settings
from playwright.sync_api import Browser, Page, expect

from shopkeeper.catalog.models import Product
from shopkeeper.orders.models import Order
from shopkeeper.refunds.models import Refund
from tests.browser.csp_watch import watch_csp_violations
from tests.browser.staff_pages import open_order, shot
from tests.browser.storefront_pages import GOOD_CARD, buy_until_pay_page, pay_with
from tests.mail_server import Inbox, bodies, smtp_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.localstripe,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def inbox(live_server: Any) -> Iterator[Inbox]:
    """The customer's mailbox; the mails' links point at the live server."""
    with smtp_server() as received, override_settings(SHOPKEEPER_SITE_URL=live_server.url):
        yield received


@pytest.fixture
def device(chromium: Browser, shop: str) -> Iterator[Any]:
    """`device()`: a new browser of the customer's (no cookies shared with another)."""
    contexts, pages = [], []

    def open_device() -> Page:
        context = chromium.new_context(base_url=shop, viewport={"width": 1200, "height": 900})
        context.set_default_timeout(15_000)
        contexts.append(context)
        page = context.new_page()
        pages.append((page, watch_csp_violations(page)))
        return page

    yield open_device
    for context in contexts:
        context.close()
    assert [v for _, violations in pages for v in violations] == []


def mail(inbox: Inbox, subject: str, timeout: float = 20.0) -> EmailMessage:
    """The customer's mail with this subject, once the worker has sent it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in inbox.to("ada@example.com"):
            if str(message["Subject"]) == subject:
                return message
        time.sleep(0.2)
    raise AssertionError(f"no mail {subject!r}; got {inbox.subjects()}")


def link_in(message: EmailMessage) -> str:
    text, _ = bodies(message)
    found = re.search(r"https?://\S+/orders/SK-\w+\?key=\S+", text)
    assert found, text
    return found.group(0)


def test_buy_ship_return_receive_restock_refund_and_the_mails_tell_the_customer(
    device, sign_in, inbox
):
    # The customer buys two mugs and pays
    shopper = device()
    number = buy_until_pay_page(shopper)
    pay_with(shopper, GOOD_CARD)
    expect(shopper.get_by_test_id("order-status")).to_contain_text("Payment received")
    confirmation_link = shopper.get_by_test_id("order-link").get_attribute("href")
    assert Product.objects.get(sku="MUG").stock == 3
    link = link_in(mail(inbox, f"Your order {number}"))
    assert link.endswith(str(confirmation_link).split("/orders/", 1)[1])

    # Staff ship both with a tracking number, in the order page's dialog
    staff_page = sign_in("manager")
    open_order(staff_page, Order.objects.get(number=number))
    staff_page.get_by_test_id("order-actions").get_by_role("button", name="Ship…").click()
    dialog = staff_page.locator("dialog[open]")
    dialog.get_by_label("Carrier").fill("DHL")
    dialog.get_by_label("Tracking number").fill("JD014600006281")
    dialog.get_by_role("button", name="Review shipment").click()
    dialog.get_by_role("button", name="Ship", exact=True).click()
    expect(staff_page.get_by_test_id("tracking-number")).to_have_text("JD014600006281")

    # On another device, the customer opens the link from the mail and asks for one mug back
    phone = device()
    phone.goto(link)
    expect(phone.get_by_test_id("shipments")).to_contain_text("DHL JD014600006281")
    form = phone.get_by_test_id("return-form")
    form.get_by_label("Quantity").fill("1")
    form.get_by_label("Reason").select_option("damaged")
    form.get_by_role("button", name="Ask to return").click()
    expect(phone.get_by_test_id("returns")).to_contain_text("Requested")
    shot(phone, "life-customer-return")

    # Staff find it in the returns queue, receive it into stock and refund it
    staff_page.goto("/admin/returns/")
    staff_page.get_by_role("link", name=number).first.click()
    returns = staff_page.get_by_test_id("returns")
    expect(returns.locator("[data-return-status]")).to_have_text("Requested")
    returns.get_by_role("button", name="Receive…").click()
    dialog = staff_page.locator("dialog[open]")
    dialog.get_by_label("Restock Enamel mug").check()
    dialog.get_by_role("button", name="Review receipt").click()
    dialog.get_by_role("button", name="Receive", exact=True).click()
    expect(returns.locator("[data-return-status]")).to_have_text("Received")
    assert Product.objects.get(sku="MUG").stock == 4
    returns.get_by_role("button", name="Refund…").click()
    dialog = staff_page.locator("dialog[open]")
    expect(dialog.get_by_test_id("return-refund-amount")).to_have_text("12.50 USD")
    expect(dialog.get_by_label("Notify the customer")).to_be_checked()
    dialog.get_by_role("button", name="Review refund").click()
    dialog.get_by_role("button", name="Refund 12.50 USD").click()
    expect(returns.locator("[data-return-status]")).to_have_text("Refunded")
    expect(staff_page.get_by_test_id("refunded")).to_have_text("12.50 USD")
    refund_row = staff_page.get_by_test_id("refunds").locator(".refund-row")
    expect(refund_row).to_contain_text("12.50 USD")
    expect(refund_row).to_contain_text("1 \u00d7 Enamel mug")
    shot(staff_page, "life-staff-refunded")
    refund = Refund.objects.get(order__number=number)
    assert (refund.status, refund.amount_minor) == ("succeeded", 1250)
    assert Product.objects.get(sku="MUG").stock == 4  # restocked once, on receipt, not again

    # The customer's page and mails tell the same story
    phone.reload()
    expect(phone.get_by_test_id("refunds")).to_contain_text("12.50 USD")
    shipped = mail(inbox, f"Order {number} has shipped")
    shipped_text, shipped_html = bodies(shipped)
    assert "DHL" in shipped_text and "JD014600006281" in shipped_text
    assert link_in(shipped) == link
    assert "JD014600006281" in shipped_html
    refunded = mail(inbox, f"Your return for order {number} is refunded")
    refunded_text, _ = bodies(refunded)
    assert "12.50 USD" in refunded_text
    assert link_in(refunded) == link
    subjects = [str(m["Subject"]) for m in inbox.to("ada@example.com")]
    assert len(subjects) == len(set(subjects))  # never twice for one event
