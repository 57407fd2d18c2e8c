"""The back office in a real browser (issue 11): staff ship with tracking, create a return,
receive it with restock and refund it, all through the order page's dialogs, never reloading
the page; and the page stays usable on a 360 px wide phone."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page, expect

from shopkeeper.catalog.models import Product
from shopkeeper.fulfilment.services import ship_order
from shopkeeper.notifications.models import Notification
from shopkeeper.returns.rules import ReturnLineRequest
from shopkeeper.returns.services import receive_return, request_return
from shopkeeper.returns.states import ReturnStatus
from tests.browser.staff_pages import open_order, shot
from tests.factories import paid_order, staff

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_dialog(page: Page, scope: Any, button: str) -> Any:
    scope.get_by_role("button", name=button).click()
    dialog = page.locator("dialog[open]")
    expect(dialog).to_be_visible()
    return dialog


def mark_page(page: Page) -> None:
    """A mark that only a page reload would wipe out."""
    page.evaluate("window.__sameDocument = true")


def still_same_page(page: Page) -> bool:
    return bool(page.evaluate("window.__sameDocument === true"))


def test_given_a_paid_order_when_staff_ship_return_receive_and_refund_then_all_without_reload(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, items={"MUG": 2, "CAP": 1}, price="10.00")
    stock_before = Product.objects.get(sku="MUG").stock
    page = sign_in("manager")
    open_order(page, order)
    mark_page(page)
    actions = page.get_by_test_id("order-actions")

    # Ship everything with a tracking number, through the review step
    dialog = open_dialog(page, actions, "Ship…")
    dialog.get_by_label("Carrier").fill("DHL")
    dialog.get_by_label("Tracking number").fill("TRK-42")
    dialog.get_by_role("button", name="Review shipment").click()
    expect(dialog.locator("[data-confirm-question]")).to_contain_text(
        "Ship 2 \u00d7 Mug, 1 \u00d7 Cap with DHL, tracking number TRK-42?"
    )
    shot(page, "ship-review")
    dialog.get_by_role("button", name="Ship", exact=True).click()
    shipments = page.get_by_test_id("shipments")
    expect(shipments.get_by_test_id("tracking-number")).to_have_text("TRK-42")
    expect(shipments.locator("[data-shipment-status]")).to_have_text("Shipped")
    expect(actions.get_by_role("button", name="Ship…")).to_have_count(0)

    # Ask for one mug back, damaged
    dialog = open_dialog(page, page.get_by_test_id("order-actions"), "Create return…")
    dialog.get_by_label("Quantity of Mug to return").fill("1")
    dialog.get_by_label("Why Mug comes back").select_option("damaged")
    dialog.get_by_role("button", name="Review return").click()
    question = dialog.locator("[data-confirm-question]")
    expect(question).to_have_text("Ask for 1 \u00d7 Mug (damaged) back?")
    dialog.get_by_role("button", name="Create return").click()
    returns = page.get_by_test_id("returns")
    expect(returns.locator("[data-return-status]")).to_have_text("Requested")

    # Receive it and put it back in stock
    dialog = open_dialog(page, returns, "Receive…")
    dialog.get_by_label("Restock Mug").check()
    dialog.get_by_role("button", name="Review receipt").click()
    expect(dialog.locator("[data-confirm-question]")).to_have_text(
        "Received 1 \u00d7 Mug; back in stock: 1 \u00d7 Mug?"
    )
    dialog.get_by_role("button", name="Receive", exact=True).click()
    expect(returns.locator("[data-return-status]")).to_have_text("Received")
    expect(returns).to_contain_text("1 received, restocked")
    assert Product.objects.get(sku="MUG").stock == stock_before + 1

    # Refund it: the dialog shows what the refund engine will refund
    dialog = open_dialog(page, returns, "Refund…")
    expect(dialog.get_by_test_id("return-refund-amount")).to_have_text("10.00 USD")
    dialog.get_by_label("Include shipping").check()
    expect(dialog.get_by_test_id("return-refund-amount")).to_have_text("15.00 USD")
    dialog.get_by_label("Include shipping").uncheck()
    expect(dialog.get_by_test_id("return-refund-amount")).to_have_text("10.00 USD")
    notify = dialog.get_by_label("Notify the customer")
    expect(notify).to_be_checked()
    notify.uncheck()  # staff told the customer by phone
    dialog.get_by_role("button", name="Review refund").click()
    expect(dialog.locator("[data-confirm-question]")).to_contain_text("Refund 10.00 USD to")
    shot(page, "return-refund-review")
    dialog.get_by_role("button", name="Refund 10.00 USD").click()
    expect(returns.locator("[data-return-status]")).to_have_text("Refunded")
    expect(page.get_by_test_id("refunded")).to_contain_text("10.00")
    assert not Notification.objects.filter(kind__in=["refund_made", "return_refunded"]).exists()
    timeline = page.get_by_test_id("timeline")
    for kind in ("order.shipped", "order.return.requested", "order.return.received"):
        expect(timeline.locator(f'[data-event="{kind}"]')).to_have_count(1)
    expect(timeline.locator('[data-event="order.return.refunded"]')).to_have_count(1)
    shot(page, "order-returned")
    assert still_same_page(page)


def test_given_a_return_refund_above_the_limit_then_its_dialog_and_row_show_the_approval_wait(
    sign_in, fake_gateway
):
    # 10 mugs at 10.50: refunding them all is above support's limit
    order = paid_order(fake_gateway, items={"MUG": 10}, price="10.50")
    owner = staff("owner", "owner-returns@shop.example")
    ship_order(order_number=order.number, actor=owner, lines=None)
    returned = request_return(
        order_number=order.number,
        lines=[ReturnLineRequest("MUG", 10, "damaged")],
        note="",
        actor=owner,
    )
    receive_return(return_id=returned.pk, lines=None, actor=owner)
    page = sign_in("support")
    open_order(page, order)
    mark_page(page)
    returns = page.get_by_test_id("returns")
    dialog = open_dialog(page, returns, "Refund…")
    expect(dialog.get_by_test_id("return-refund-amount")).to_have_text("105.00 USD")
    expect(dialog.locator("[data-approval-note]").first).to_contain_text("approval")
    dialog.get_by_role("button", name="Review refund").click()
    dialog.get_by_role("button", name="Request approval for 105.00 USD").click()
    expect(page.locator("#messages")).to_contain_text("awaits approval")
    expect(returns.get_by_test_id("return-awaiting-approval")).to_contain_text(
        "Refund of 105.00 USD awaits a manager's approval"
    )
    expect(returns.get_by_role("button", name="Refund…")).to_have_count(0)
    assert still_same_page(page)


def test_given_shipped_and_returned_when_delivering_rejecting_and_noting_then_all_in_place(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, items={"MUG": 1}, price="10.00")
    owner = staff("owner", "owner-delivers@shop.example")
    ship_order(order_number=order.number, actor=owner, lines=None, carrier="UPS")
    request_return(
        order_number=order.number,
        lines=[ReturnLineRequest("MUG", 1, "no_longer_needed")],
        note="",
        actor=owner,
    )
    page = sign_in("support")
    open_order(page, order)
    mark_page(page)
    shipments = page.get_by_test_id("shipments")
    dialog = open_dialog(page, shipments, "Delivered…")
    dialog.get_by_role("button", name="Mark delivered").click()
    expect(shipments.locator("[data-shipment-status]")).to_have_text("Delivered")
    returns = page.get_by_test_id("returns")
    dialog = open_dialog(page, returns, "Reject…")
    dialog.get_by_label("Why?").fill("Outside the return window")
    dialog.get_by_role("button", name="Reject return").click()
    expect(returns.locator("[data-return-status]")).to_have_text("Rejected")
    expect(returns).to_contain_text("Outside the return window")
    dialog = open_dialog(page, page.get_by_test_id("timeline"), "Add note…")
    dialog.get_by_role("button", name="Add note").click()
    expect(dialog.get_by_role("alert").first).to_have_text("Write the note first.")
    dialog.get_by_label("Note").fill("Customer called about the parcel")
    dialog.get_by_role("button", name="Add note").click()
    timeline = page.get_by_test_id("timeline")
    expect(timeline.locator('[data-event="order.note"]')).to_contain_text(
        "Customer called about the parcel"
    )
    for kind in ("order.shipment.delivered", "order.return.rejected"):
        expect(timeline.locator(f'[data-event="{kind}"]')).to_have_count(1)
    assert still_same_page(page)


def test_given_a_refusal_when_shipping_more_than_is_left_then_the_dialog_says_so_and_nothing_ships(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, items={"MUG": 2}, price="10.00")
    page = sign_in("support")
    open_order(page, order)
    dialog = open_dialog(page, page.get_by_test_id("order-actions"), "Ship…")
    # someone else ships one mug meanwhile: the dialog still offers two
    ship_order(order_number=order.number, actor=staff("owner"), lines={"MUG": 1})
    dialog.get_by_role("button", name="Review shipment").click()
    dialog.get_by_role("button", name="Ship", exact=True).click()
    expect(dialog.get_by_role("alert").first).to_contain_text("left to ship")
    expect(dialog).to_be_visible()
    assert order.shipments.count() == 1


def test_given_a_phone_width_then_no_horizontal_scroll_and_dialog_buttons_in_view(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, items={"MUG": 2, "CAP": 1}, price="10.00")
    manager = staff("owner", "owner-ships@shop.example")
    ship_order(order_number=order.number, actor=manager, lines=None, tracking_number="TRK-1")
    request_return(
        order_number=order.number,
        lines=[ReturnLineRequest("MUG", 1, "not_as_described")],
        note="",
        actor=manager,
    )
    page = sign_in("manager")
    page.set_viewport_size({"width": 360, "height": 740})
    open_order(page, order)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot(page, "order-360")
    returns = page.get_by_test_id("returns")
    for control in returns.get_by_role("button").all():
        box = control.bounding_box()
        assert box is not None and box["x"] + box["width"] <= 360
    for scope, button in (
        (page.get_by_test_id("order-actions"), "Create return…"),
        (returns, "Receive…"),
        (page.get_by_test_id("timeline"), "Add note…"),
    ):
        dialog = open_dialog(page, scope, button)
        shot(page, f"dialog-360-{button.rstrip('…').replace(' ', '-').lower()}")
        for control in dialog.locator(
            ".dialog-foot:not([hidden]) button, .dialog-body:not([hidden]) :is(input, select)"
        ).all():
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, button
            assert box["y"] + box["height"] <= 740, button
        assert page.evaluate("document.documentElement.scrollWidth") <= 360, button
        dialog.get_by_role("button", name="Close").click()
    assert order.returns.get().status == ReturnStatus.REQUESTED
