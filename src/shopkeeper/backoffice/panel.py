"""What the back-office pages show, read through the same selectors as the admin API.

The order panel is the API's order detail (with `available_actions` for this user) plus the
refunds and the timeline, so a button on the page and an action in the API never disagree.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from shopkeeper.accounts.permissions import Permission, can
from shopkeeper.money import exponent
from shopkeeper.orders.actions import available_actions, cancel_blocked_reason
from shopkeeper.orders.selectors import get_order, order_detail
from shopkeeper.orders.states import OrderStatus, PaymentStatus

REFUND_REASONS = (
    ("requested_by_customer", "Requested by customer"),
    ("duplicate", "Duplicate charge"),
    ("fraudulent", "Fraudulent"),
    ("other", "Other"),
)
OPEN_REFUND_STATUSES = frozenset({"pending", "awaiting_approval", "requires_action"})


def order_list_context(request: HttpRequest) -> dict[str, Any]:
    return {
        "orders": [],
        "filters": {
            "status": request.GET.get("status", ""),
            "payment_status": request.GET.get("payment_status", ""),
            "q": request.GET.get("q", ""),
        },
        "order_statuses": [s.value for s in OrderStatus],
        "payment_statuses": [s.value for s in PaymentStatus],
        "next_cursor": None,
    }


def order_panel_context(*, number: str, user: Any) -> dict[str, Any]:
    order = get_order(number)
    detail = order_detail(order)
    refunds: list[dict[str, Any]] = detail.get("refunds", [])
    has_pending_refund = any(r["status"] == "pending" for r in refunds)
    if "available_actions" not in detail:
        detail["available_actions"] = available_actions(
            order.status,
            order.payment_status,
            [p for p in Permission if can(user, p)],
            has_pending_refund,
            refundable_minor=detail["refundable_minor"],
        )
        detail["cancel_blocked_reason"] = cancel_blocked_reason(
            order.status, order.payment_status, has_pending_refund=has_pending_refund
        )
    actions = set(detail["available_actions"])
    return {
        "order": detail,
        "actions": actions,
        "refunds": [_with_review(refund, user) for refund in refunds],
        "events": detail.get("events", []),
        "exponent": exponent(order.currency),
        "pending": any(r["status"] in OPEN_REFUND_STATUSES for r in refunds),
        "show_cancel_blocked": bool(detail.get("cancel_blocked_reason"))
        and can(user, Permission.ORDERS_CANCEL)
        and order.status not in (OrderStatus.CANCELLED, OrderStatus.CLOSED),
        "refund_reasons": REFUND_REASONS,
    }


def _with_review(refund: dict[str, Any], user: Any) -> dict[str, Any]:
    """A refund awaiting approval can be reviewed by someone else with `refunds.approve`."""
    requested_by = refund.get("requested_by") or {}
    requester_id = requested_by.get("id") if isinstance(requested_by, dict) else None
    reviewable = (
        refund["status"] == "awaiting_approval"
        and can(user, Permission.REFUNDS_APPROVE)
        and requester_id != getattr(user, "pk", None)
    )
    return {**refund, "reviewable": reviewable}
