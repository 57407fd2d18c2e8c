"""Returns on a 360 px phone screen (issue 11): the customer asks for one back from the order's
link, and staff find it in the back office's returns queue; neither page scrolls sideways."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import Browser, Page, expect

from shopkeeper.fulfilment.services import ship_order
from shopkeeper.orders.links import order_link
from shopkeeper.returns.models import Return
from tests.browser.csp_watch import watch_csp_violations
from tests.factories import paid_order, staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("SHOPKEEPER_SCREENSHOTS")
PHONE = {"width": 360, "height": 740}


@pytest.fixture
def phone(chromium: Browser, live_server: Any) -> Iterator[Page]:
    context = chromium.new_context(base_url=live_server.url, viewport=PHONE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    violations = watch_csp_violations(page)
    yield page
    context.close()
    assert violations == [], f"Content-Security-Policy violations: {violations}"


def fits_the_screen(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{name} is {width} px wide"


def test_a_customer_asks_to_return_a_mug_and_staff_see_it_in_the_queue(
    phone, live_server, fake_gateway
):
    order = paid_order(fake_gateway, items={"MUG": 2, "CAP": 1}, price="10.00")
    ship_order(order_number=order.number, actor=None, actor_label="tests", lines={"MUG": 2})

    phone.goto(order_link(order.number))
    form = phone.get_by_test_id("return-form")
    fits_the_screen(phone, "customer-return-form")
    form.get_by_label("Quantity").fill("1")
    form.get_by_label("Reason").select_option("damaged")
    form.get_by_role("button", name="Ask to return").click()

    expect(phone.get_by_test_id("returns")).to_contain_text("Requested")
    fits_the_screen(phone, "customer-return-asked")
    returned = Return.objects.get()
    assert (returned.source, returned.status) == ("customer", "requested")

    client = Client()
    client.force_login(staff("support"))
    phone.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}]
    )
    phone.goto("/admin/returns/")
    row = phone.locator(f'tr[data-return="{returned.pk}"]')
    expect(row).to_contain_text("Customer")
    fits_the_screen(phone, "returns-queue")
    row.get_by_role("link", name=order.number).click()
    expect(phone).to_have_url(f"{live_server.url}/admin/orders/{order.number}")
