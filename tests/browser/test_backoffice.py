"""The back office in a real browser: staff refund, capture and cancel orders through the UI.

Chromium (Debian's) drives the live server, which runs in this process: the FakeGateway the
tests set up is the one the server calls. Set SHOPKEEPER_SCREENSHOTS=/some/dir to keep
screenshots of the pages and dialogs.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from shopkeeper.catalog.models import Product
from shopkeeper.errors import PaymentRequestInvalid
from shopkeeper.notifications.models import Notification
from shopkeeper.orders.models import Order
from tests.browser.staff_pages import open_order, shot
from tests.factories import (
    PASSWORD,
    authorised_order,
    new_order,
    paid_order,
    staff,
)
from tests.fakes import sign_payload
from tests.jobs import run_jobs

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def money(page: Page, name: str) -> Any:
    return expect(page.get_by_test_id(name))


def action_buttons(page: Page) -> Any:
    return page.get_by_test_id("order-actions").get_by_role("button")


def refund_count(order: Order) -> int:
    return Order.objects.get(pk=order.pk).refunds.count()


def order_state(number: str) -> dict[str, Any]:
    order = Order.objects.get(number=number)
    return {"status": order.status, "payment_status": order.payment_status}


# ---- reading and access ----------------------------------------------------------------


def test_given_viewer_when_opening_a_paid_order_then_money_shown_and_no_action_buttons(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50")
    page = sign_in("viewer")
    open_order(page, order)
    money(page, "captured").to_contain_text("26.00")
    money(page, "refundable").to_contain_text("26.00")
    expect(page.get_by_test_id("payment-intent")).to_have_text(order.payments.get().intent_id)
    expect(action_buttons(page)).to_have_count(0)
    expect(page.locator("[data-open-dialog]")).to_have_count(0)
    shot(page, "order-viewer")


def test_given_paid_order_when_support_opens_it_then_reason_shown_and_no_cancel_button(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50")
    page = sign_in("support")
    open_order(page, order)
    expect(page.get_by_test_id("cancel-blocked-reason")).to_contain_text(
        "A paid order must be refunded in full before it can be cancelled"
    )
    expect(page.get_by_role("button", name="Cancel order…")).to_have_count(0)
    expect(page.get_by_role("button", name="Refund…")).to_be_visible()
    shot(page, "order-paid")


def test_given_orders_when_listing_and_filtering_then_badges_and_links(sign_in, fake_gateway):
    paid = paid_order(fake_gateway, price="10.50", email="paid@example.com")
    unpaid = new_order(fake_gateway, price="10.50", email="unpaid@example.com")
    page = sign_in("viewer")
    page.goto("/admin/orders")
    rows = page.get_by_test_id("orders").locator("tbody tr")
    expect(rows).to_have_count(2)
    shot(page, "orders-list")
    page.get_by_label("Payment").select_option("paid")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(paid.number)
    expect(rows.first.locator("[data-payment-status]")).to_have_text("Paid")
    page.get_by_role("link", name=paid.number).click()
    expect(page.locator("#order-panel")).to_have_attribute("data-order", paid.number)
    assert unpaid.number not in page.content()


def test_given_signed_in_page_when_posting_without_csrf_token_then_403_and_nothing_changes(
    sign_in, fake_gateway
):
    order = authorised_order(fake_gateway, price="10.50")
    page = sign_in("manager")
    open_order(page, order)
    # A script that forgets the X-CSRFToken header: the API refuses with problem+json.
    answer = page.evaluate(
        """async (url) => {
            const r = await fetch(url, {method: "POST", credentials: "same-origin",
              headers: {"Content-Type": "application/json", "Accept": "application/json"},
              body: JSON.stringify({reason: "no token"})});
            return {status: r.status, body: await r.json()};
        }""",
        f"/api/admin/orders/{order.number}/cancel",
    )
    assert answer["status"] == 403
    assert answer["body"]["code"] == "csrf_failed"
    # A plain form post from elsewhere (no token at all): the readable refusal page.
    response = page.request.post("/admin/logout/", form={"x": "1"})
    assert response.status == 403
    assert "Request refused" in response.text()
    assert order_state(order.number) == {"status": "processing", "payment_status": "authorized"}
    page.reload()
    expect(page.get_by_test_id("whoami")).to_be_visible()  # still signed in


def test_given_open_order_page_when_the_session_ends_then_the_page_says_so_and_keeps_the_order(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50")
    page = sign_in("viewer")
    open_order(page, order)
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    assert page.request.post("/admin/logout/", headers={"X-CSRFToken": token}).ok
    # Coming back to the tab refreshes the panel at once.
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    expect(page.locator("#messages")).to_contain_text("You have been signed out")
    expect(page.locator("#order-panel")).to_have_attribute("data-order", order.number)


# ---- refunds ---------------------------------------------------------------------------


def review_refund(page: Page, amount: str | None = None) -> None:
    page.get_by_role("button", name="Refund…").click()
    dialog = page.locator("#refund-dialog")
    expect(dialog).to_be_visible()
    if amount is not None:
        dialog.get_by_label("Amount (USD)").fill(amount)
    dialog.get_by_role("button", name="Review refund").click()


def test_given_paid_order_when_manager_refunds_part_then_one_refund_and_panel_updates(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50")
    page = sign_in("manager")
    open_order(page, order)
    review_refund(page, "10.00")
    dialog = page.locator("#refund-dialog")
    expect(dialog.locator("[data-confirm-question]")).to_have_text(
        "Refund 10.00 USD to Visa •••• 4242?"
    )
    shot(page, "refund-confirm")
    confirm = dialog.get_by_role("button", name="Refund 10.00 USD")
    confirm.dblclick()  # a double click refunds once: one dialog, one Idempotency-Key
    expect(page.locator("#messages")).to_contain_text("Refunded 10.00 USD")
    expect(dialog).to_be_hidden()
    money(page, "refunded").to_contain_text("10.00")
    money(page, "refundable").to_contain_text("16.00")
    expect(page.locator("#order-panel [data-payment-status]")).to_have_text("Partially refunded")
    expect(page.get_by_test_id("refunds").locator("[data-refund-status]")).to_have_text(
        ["Succeeded"]
    )
    shot(page, "refund-done")
    assert refund_count(order) == 1
    assert len([c for c in fake_gateway.calls if c[0] == "create_refund"]) >= 1
    assert len(fake_gateway.refunds) == 1


def test_given_paid_order_when_refunding_one_item_with_restock_and_shipping_then_amount_follows(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50")  # 2 mugs at 10.50 + 5.00 shipping
    stock_before = Product.objects.get(sku="MUG").stock
    page = sign_in("manager")
    open_order(page, order)
    page.get_by_role("button", name="Refund…").click()
    dialog = page.locator("#refund-dialog")
    dialog.get_by_label("Quantity of Mug to refund").fill("1")
    dialog.get_by_label("Restock Mug").check()
    dialog.get_by_label("Include shipping").check()
    expect(dialog.get_by_label("Amount (USD)")).to_have_value("15.50")
    dialog.get_by_label("Reason").select_option("other")
    dialog.get_by_label("Note").fill("one mug arrived broken")
    shot(page, "refund-lines")
    dialog.get_by_role("button", name="Review refund").click()
    expect(dialog.locator("[data-confirm-question]")).to_have_text(
        "Refund 15.50 USD to Visa •••• 4242?"
    )
    dialog.get_by_role("button", name="Refund 15.50 USD").click()
    expect(page.locator("#messages")).to_contain_text("Refunded 15.50 USD")
    line = page.locator("table.lines tbody tr").first
    expect(line).to_contain_text("1 restocked")
    expect(page.get_by_test_id("refunds")).to_contain_text("1 \u00d7 Mug, restocked")
    money(page, "refundable").to_contain_text("10.50")
    assert Product.objects.get(sku="MUG").stock == stock_before + 1


def test_given_stripe_refuses_the_refund_when_confirming_then_the_failure_is_shown(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50")
    fake_gateway.fail_next["create_refund"] = [
        PaymentRequestInvalid("Charge has been disputed", stripe_code="charge_disputed")
    ]
    page = sign_in("manager")
    open_order(page, order)
    review_refund(page, "5.00")
    page.locator("#refund-dialog").get_by_role("button", name="Refund 5.00 USD").click()
    expect(page.locator("#messages .message-error")).to_contain_text("Refund of 5.00 USD failed")
    row = page.get_by_test_id("refunds").locator(".refund-row")
    expect(row.locator("[data-refund-status]")).to_have_text("Failed")
    money(page, "refunded").to_contain_text("0.00")
    money(page, "refundable").to_contain_text("26.00")
    assert fake_gateway.refunds == {}


def test_given_refund_dialog_when_amount_over_refundable_then_rejected_and_nothing_changed(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50")
    page = sign_in("manager")
    open_order(page, order)
    review_refund(page, "26.01")
    dialog = page.locator("#refund-dialog")
    expect(dialog.get_by_role("alert").first).to_have_text("At most 26.00 USD can be refunded.")
    shot(page, "refund-over")
    # The dialog was opened on 26.00; meanwhile a colleague refunds 20.00 through the API.
    dialog.get_by_label("Amount (USD)").fill("26.00")
    dialog.get_by_role("button", name="Review refund").click()
    colleague = Client()
    colleague.force_login(staff("owner", password=PASSWORD))
    assert (
        colleague.post(
            f"/api/admin/orders/{order.number}/refunds",
            {"amount": "20.00", "reason": "requested_by_customer"},
            content_type="application/json",
        ).status_code
        == 201
    )
    dialog.get_by_role("button", name="Refund 26.00 USD").click()
    # The server refuses the stale amount; the page shows why and the new state.
    expect(page.locator("#messages")).to_contain_text("refund")
    expect(page.locator("#messages .message-error")).to_be_visible()
    money(page, "refunded").to_contain_text("20.00")
    money(page, "refundable").to_contain_text("6.00")
    assert refund_count(order) == 1
    assert len(fake_gateway.refunds) == 1


def test_given_paid_order_when_refunded_in_full_then_it_can_be_cancelled(sign_in, fake_gateway):
    order = paid_order(fake_gateway, price="10.50")
    page = sign_in("manager")
    open_order(page, order)
    review_refund(page)  # the amount defaults to everything refundable
    page.locator("#refund-dialog").get_by_role("button", name="Refund 26.00 USD").click()
    expect(page.locator("#messages")).to_contain_text("Refunded 26.00 USD")
    expect(page.locator("#order-panel [data-payment-status]")).to_have_text("Refunded")
    expect(page.get_by_role("button", name="Refund…")).to_have_count(0)

    page.get_by_role("button", name="Cancel order…").click()
    dialog = page.locator("#cancel-dialog")
    dialog.get_by_role("button", name="Cancel order").click()
    expect(dialog.get_by_role("alert")).to_have_text("A reason is required to cancel an order.")
    dialog.get_by_label("Reason").fill("Customer changed their mind")
    expect(dialog.get_by_label("Notify the customer")).to_be_checked()
    dialog.get_by_label("Notify the customer").uncheck()
    shot(page, "cancel-dialog")
    dialog.get_by_role("button", name="Cancel order").click()
    expect(page.locator("#messages")).to_contain_text("Order cancelled")
    expect(page.locator("#order-panel [data-order-status]")).to_have_text("Cancelled")
    expect(action_buttons(page)).to_have_count(0)
    assert order_state(order.number) == {"status": "cancelled", "payment_status": "refunded"}
    # The refund dialog's "Notify the customer" was left ticked, the cancel dialog's unticked.
    mails = Notification.objects.filter(order=order).values_list("kind", flat=True)
    assert set(mails) == {"order_placed", "payment_received", "refund_made"}
    shot(page, "order-cancelled")


def test_given_support_refund_above_limit_when_manager_approves_then_refunded(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50", items={"MUG": 10})  # 105.00 + 5.00 shipping
    support = sign_in("support")
    open_order(support, order)
    review_refund(support, "110.00")
    support.locator("#refund-dialog").get_by_role(
        "button", name="Request approval for 110.00 USD"
    ).click()
    expect(support.locator("#messages")).to_contain_text("awaits approval")
    row = support.get_by_test_id("refunds").locator(".refund-row")
    expect(row.locator("[data-refund-status]")).to_have_text("Awaiting approval")
    expect(row.get_by_role("button", name="Approve")).to_have_count(0)  # not the requester
    assert fake_gateway.refunds == {}

    manager = sign_in("manager")
    manager.goto("/admin/orders")
    queue = manager.get_by_test_id("approval-queue")
    expect(queue).to_contain_text("110.00 USD")
    shot(manager, "orders-approval-queue")
    queue.get_by_role("link", name=order.number).click()
    expect(manager.locator("#order-panel")).to_have_attribute("data-order", order.number)
    shot(manager, "approval-pending")
    manager_row = manager.get_by_test_id("refunds").locator(".refund-row")
    manager_row.get_by_role("button", name="Approve").click()
    dialog = manager.locator("#approve-dialog")
    expect(dialog).to_contain_text("110.00 USD requested by support@shop.example")
    dialog.get_by_role("button", name="Approve and refund").click()
    expect(manager.locator("#messages")).to_contain_text("Refunded 110.00 USD")
    expect(manager_row.locator("[data-refund-status]")).to_have_text("Succeeded")
    # The support page, still open, catches up by itself.
    expect(row.locator("[data-refund-status]")).to_have_text("Succeeded", timeout=10_000)
    expect(support.locator("#order-panel [data-payment-status]")).to_have_text("Refunded")
    assert len(fake_gateway.refunds) == 1


def refund_event(refund_id: str, gateway: Any) -> bytes:
    """A signed-ready `refund.updated` event carrying the fake gateway's refund, as Stripe sends."""
    refund = gateway.refunds[refund_id]
    obj = {
        "id": refund.id,
        "object": "refund",
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.currency.lower(),
        "payment_intent": refund.payment_intent_id,
        "charge": refund.charge_id,
        "metadata": dict(refund.metadata),
        "failure_reason": refund.failure_reason or None,
    }
    event = {
        "id": f"evt_{refund.id}_{refund.status}",
        "object": "event",
        "type": "refund.updated",
        "created": int(time.time()),
        "data": {"object": obj},
    }
    return json.dumps(event).encode()


def test_given_refund_pending_at_stripe_when_webhook_settles_it_then_the_open_page_updates(
    sign_in, fake_gateway
):
    fake_gateway.refund_status = "pending"
    order = paid_order(fake_gateway, price="10.50")
    page = sign_in("manager")
    open_order(page, order)
    review_refund(page, "10.00")
    page.locator("#refund-dialog").get_by_role("button", name="Refund 10.00 USD").click()
    expect(page.locator("#messages")).to_contain_text("pending")
    row = page.get_by_test_id("refunds").locator(".refund-row")
    expect(row.locator("[data-refund-status]")).to_have_text("Pending")
    expect(page.get_by_test_id("reserved")).to_contain_text("10.00")
    shot(page, "refund-pending")

    (refund_id,) = fake_gateway.refunds
    fake_gateway.settle_refund(refund_id, "succeeded")
    body = refund_event(refund_id, fake_gateway)
    response = Client().post(
        "/webhooks/stripe",
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(body),
    )
    assert response.status_code == 200
    run_jobs()  # the worker processes the stored event
    # No reload: the page polls while a refund is pending.
    expect(row.locator("[data-refund-status]")).to_have_text("Succeeded", timeout=8_000)
    money(page, "refunded").to_contain_text("10.00")
    expect(page.get_by_test_id("reserved")).to_have_count(0)


def test_given_refund_awaiting_approval_when_manager_rejects_then_money_stays_refundable(
    sign_in, fake_gateway
):
    order = paid_order(fake_gateway, price="10.50", items={"MUG": 10})
    support = staff("support", "asker@shop.example", password=PASSWORD)
    asker = Client()
    asker.force_login(support)
    created = asker.post(
        f"/api/admin/orders/{order.number}/refunds",
        {"amount": "110.00", "reason": "duplicate"},
        content_type="application/json",
    )
    assert created.json()["refund"]["status"] == "awaiting_approval"
    page = sign_in("manager")
    open_order(page, order)
    money(page, "refundable").to_contain_text("0.00")
    page.get_by_role("button", name="Reject").click()
    dialog = page.locator("#reject-dialog")
    dialog.get_by_label("Why?").fill("Not a duplicate")
    dialog.get_by_role("button", name="Reject").click()
    expect(page.locator("#messages")).to_contain_text("Refund request rejected")
    row = page.get_by_test_id("refunds").locator(".refund-row")
    expect(row.locator("[data-refund-status]")).to_have_text("Rejected")
    expect(row).to_contain_text("Rejected by manager@shop.example")
    money(page, "refundable").to_contain_text("110.00")
    assert fake_gateway.refunds == {}


# ---- capture ---------------------------------------------------------------------------


def test_given_authorised_order_when_manager_captures_part_then_paid_that_amount(
    sign_in, fake_gateway
):
    order = authorised_order(fake_gateway, price="10.50")
    page = sign_in("manager")
    open_order(page, order)
    page.get_by_role("button", name="Capture…").click()
    dialog = page.locator("#capture-dialog")
    amount = dialog.get_by_label("Amount to capture (USD)")
    expect(amount).to_have_value("26.00")
    amount.fill("20.00")
    shot(page, "capture-dialog")
    dialog.get_by_role("button", name="Capture").click()
    expect(page.locator("#messages")).to_contain_text("Captured 20.00 USD")
    money(page, "captured").to_contain_text("20.00")
    expect(page.locator("#order-panel [data-payment-status]")).to_have_text("Paid")
    assert order_state(order.number)["payment_status"] == "paid"


def test_given_authorised_order_when_manager_cancels_then_authorisation_voided(
    sign_in, fake_gateway
):
    order = authorised_order(fake_gateway, price="10.50")
    page = sign_in("manager")
    open_order(page, order)
    page.get_by_role("button", name="Cancel order…").click()
    dialog = page.locator("#cancel-dialog")
    expect(dialog).to_contain_text("authorization of 26.00 USD will be voided")
    dialog.get_by_label("Reason").fill("Out of stock at the warehouse")
    dialog.get_by_role("button", name="Cancel order").click()
    expect(page.locator("#messages")).to_contain_text("Order cancelled")
    expect(page.locator("#order-panel [data-payment-status]")).to_have_text("Voided")
    expect(page.get_by_test_id("cancel-reason")).to_contain_text("Out of stock at the warehouse")
    assert order_state(order.number) == {"status": "cancelled", "payment_status": "voided"}


# ---- refund limits: the dialog says when a manager must approve -------------------------


def test_given_support_over_the_limit_when_reviewing_a_refund_then_told_approval_is_needed(
    sign_in, fake_gateway, settings
):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "10.00"}}
    order = paid_order(fake_gateway, price="10.50")  # 26.00 USD
    page = sign_in("support")
    open_order(page, order)
    page.get_by_role("button", name="Refund…").click()
    dialog = page.locator("#refund-dialog")
    expect(dialog.get_by_test_id("refund-approval-outlook")).to_contain_text(
        "Up to 10.00 USD can be refunded here without a manager's approval"
    )
    amount = dialog.get_by_label("Amount (USD)")
    amount.fill("5.00")
    expect(dialog.get_by_test_id("refund-approval")).to_have_text(
        "Within your limit: this refund needs no approval."
    )
    amount.fill("10.01")
    note = dialog.get_by_test_id("refund-approval")
    expect(note).to_contain_text("This refund will need a manager's approval")  # form step
    shot(page, "refund-needs-approval")
    dialog.get_by_role("button", name="Review refund").click()
    expect(dialog.get_by_test_id("refund-approval-confirm")).to_contain_text(
        "will need a manager's approval: it is more than the 10.00 USD you may still refund "
        "on this order alone."
    )
    expect(dialog.locator("[data-confirm-question]")).to_have_text(
        "Ask a manager to approve a refund of 10.01 USD to Visa •••• 4242?"
    )
    dialog.get_by_role("button", name="Request approval for 10.01 USD").click()
    expect(page.locator("#messages")).to_contain_text("awaits approval by a manager")
    assert Order.objects.get(pk=order.pk).refunds.get().status == "awaiting_approval"
    assert fake_gateway.refunds == {}
