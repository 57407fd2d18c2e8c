"""What the back-office pages show, read through the same selectors as the admin API.

The order panel is the API's order detail (with `available_actions` for this user) plus the
refunds and the timeline, so a button on the page and an action in the API never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from shopkeeper.accounts.permissions import Permission, can
from shopkeeper.backoffice.fulfilment_panel import fulfilment_context
from shopkeeper.backoffice.templatetags.backoffice import badge
from shopkeeper.backoffice.timeline import REASON_LABELS, timeline
from shopkeeper.money import Money, exponent
from shopkeeper.orders.lookups import get_order
from shopkeeper.orders.states import OrderStatus
from shopkeeper.orders_view.selectors import list_orders, order_detail, order_events
from shopkeeper.payments.states import PaymentStatus
from shopkeeper.refunds.approval import approval_outlook
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import (
    COUNTED_STATUSES,
    RESERVING_STATUSES,
    RefundStatus,
    may_decide,
)

PAGE_SIZE = 25
REFUND_REASONS = tuple(REASON_LABELS.items())
FILTERS = ("status", "payment_status", "q", "needs_attention", "authorization_expiring")


APPROVAL_QUEUE_SIZE = 50


def approval_queue(user: Any) -> list[dict[str, Any]]:
    """Refunds waiting for a second person, for those who may approve them (oldest first of
    the newest 50). One statement on every list page, read from `refund_status_newest_idx`:
    only what the queue shows (no refund lines), as values rather than models."""
    if not can(user, Permission.REFUNDS_APPROVE):
        return []
    newest = (
        Refund.objects.filter(status=RefundStatus.AWAITING_APPROVAL)
        .order_by("-id")
        .values_list(
            "amount_minor",
            "currency",
            "created_at",
            "requested_by_id",
            "order__number",
            "requested_by__email",
        )
    )
    me, href = getattr(user, "pk", None), order_hrefs()
    return [
        {
            "order": number,
            "href": href(number),
            "amount": str(Money(amount, currency)),
            "requested_by": email or "",
            "created_at": shown_time(created_at),
            "own": requester == me,
        }
        for amount, currency, created_at, requester, number, email in reversed(
            newest[:APPROVAL_QUEUE_SIZE]
        )
    ]


def order_hrefs() -> Callable[[str], str]:
    """The order page's link for a number: `reverse` once for a page of them, not per row
    (some 20 us each, a millisecond for the approval queue's 50)."""
    prefix = reverse("backoffice:order", args=["-"]).removesuffix("-")
    return lambda number: prefix + quote(number)


def shown_time(moment: datetime) -> str:
    """As the pages show a time: `2026-12-02 03:04` in the shop's time zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def list_row(order: dict[str, Any], href: Callable[[str], str]) -> dict[str, Any]:
    """An order of the list as its row shows it: computed here once, so the template only
    prints (a page of 25 rows cost some 4 ms of template tags and filters)."""
    return {
        "number": order["number"],
        "href": href(order["number"]),
        "placed": shown_time(order["created_at"]),
        "email": order["email"],
        "status": badge("order", order["status"]),
        "payment": badge("payment", order["payment_status"]),
        "total": f"{order['grand_total']} {order['currency']}",
        "needs_attention": order["needs_attention"],
        "authorization_expiring": order.get("authorization_expiring", False),
        "authorization_warning": order.get("authorization_warning", ""),
    }


def order_list_context(request: HttpRequest) -> dict[str, Any]:
    filters = {name: request.GET.get(name, "").strip() for name in FILTERS}
    cursor = request.GET.get("cursor", "").strip()
    page = list_orders(
        status=filters["status"] or None,
        payment_status=filters["payment_status"] or None,
        q=filters["q"] or None,
        cursor=cursor or None,
        limit=PAGE_SIZE,
        needs_attention=True if filters["needs_attention"] == "true" else None,
        authorization_expiring=True if filters["authorization_expiring"] == "true" else None,
    )
    chosen = {name: value for name, value in filters.items() if value}
    next_cursor, href = page["next_cursor"], order_hrefs()
    return {
        "orders": [list_row(order, href) for order in page["items"]],
        "approval_queue": approval_queue(request.user),
        "filters": filters,
        "filtered": bool(chosen),
        "order_statuses": [s.value for s in OrderStatus],
        "payment_statuses": [s.value for s in PaymentStatus],
        "cursor": cursor,
        "next_cursor": next_cursor,
        "first_page_query": urlencode(chosen),
        "next_page_query": urlencode({**chosen, "cursor": next_cursor}) if next_cursor else "",
    }


def order_panel_context(*, number: str, user: Any) -> dict[str, Any]:
    order = get_order(number)
    detail = order_detail(order, actor=user)
    refunded, shipping_refunded = _refunded(detail["refunds"])
    for line in detail["lines"]:
        line["refunded_quantity"] = refunded.get(line["id"], 0)
        line["refundable_quantity"] = line["quantity"] - line["refunded_quantity"]
    refunds = [_with_review(refund, user) for refund in detail["refunds"]]
    # Refunds whose outcome is still to come: the page polls quickly while one exists.
    reserved = sum(
        r["amount_minor"] for r in detail["refunds"] if r["status"] in RESERVING_STATUSES
    )
    return {
        "order": detail,
        "actions": set(detail["available_actions"]),
        "refunds": refunds,
        "events": timeline(order_events(order)),
        "exponent": exponent(order.currency),
        "shipping_refundable": order.shipping_minor > 0 and not shipping_refunded,
        "pending": bool(reserved),
        "reserved": Money(reserved, order.currency).to_decimal_string() if reserved else "",
        "show_cancel_blocked": bool(detail["cancel_blocked_reason"])
        and order.status not in (OrderStatus.CANCELLED, OrderStatus.CLOSED),
        "refund_reasons": REFUND_REASONS,
        **fulfilment_context(detail, user),
        # Said in the refund dialog before any amount is chosen; the dialog then asks the API's
        # preview whether the chosen refund would wait for approval.
        "refund_outlook": approval_outlook(order=order, actor=user)
        if "refund" in detail["available_actions"]
        else "",
    }


def _refunded(refunds: list[dict[str, Any]]) -> tuple[dict[int, int], bool]:
    """From the detail's refunds, as refunds.selectors.order_facts reads them from the tables:
    each line's quantity refunded (or about to be), and whether the shipping fee is."""
    counted = [refund for refund in refunds if refund["status"] in COUNTED_STATUSES]
    quantities: dict[int, int] = {}
    for refund in counted:
        for line in refund["lines"]:
            quantities[line["line_id"]] = quantities.get(line["line_id"], 0) + line["quantity"]
    return quantities, any(refund["include_shipping"] for refund in counted)


def _with_review(refund: dict[str, Any], user: Any) -> dict[str, Any]:
    """A refund awaiting approval is reviewed by someone else with `refunds.approve`."""
    reviewable = (
        refund["status"] == RefundStatus.AWAITING_APPROVAL
        and can(user, Permission.REFUNDS_APPROVE)
        and may_decide(requester_id=refund["requested_by_id"], decider_id=getattr(user, "pk", None))
    )
    return {**refund, "reviewable": reviewable}
