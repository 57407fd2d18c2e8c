"""The back office's returns page: returns by status, newest first, the requested ones (the
queue of parcels to expect) by default; read through the admin API's selector."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest

from shopkeeper.backoffice.panel import PAGE_SIZE, order_hrefs, shown_time
from shopkeeper.backoffice.templatetags.backoffice import badge
from shopkeeper.errors import InvalidInput
from shopkeeper.returns.selectors import list_returns
from shopkeeper.returns.states import ReturnStatus

# The tabs, in the order a return moves through them; the first is the queue.
TABS = tuple(ReturnStatus)


class InvalidReturnStatus(InvalidInput):
    code = "invalid_return_status"
    title = "The status must be requested, received, refunded or rejected"


def return_row(item: dict[str, Any], href: Callable[[str], str]) -> dict[str, Any]:
    """A return as its row shows it, computed once here so the template only prints."""
    return {
        "id": item["id"],
        "order": item["order_number"],
        "href": href(item["order_number"]),
        "requested": shown_time(item["created_at"]),
        "source": item["source"],
        "lines": ", ".join(
            f"{line['quantity']} \u00d7 {line['sku']} ({line['reason'].replace('_', ' ')})"
            for line in item["lines"]
        ),
        "status": badge("return", item["status"]),
        "refund": badge("refund", item["refund_status"]) if item["refund_status"] else "",
    }


def returns_list_context(request: HttpRequest) -> dict[str, Any]:
    status = request.GET.get("status", "").strip() or ReturnStatus.REQUESTED
    if status not in TABS:
        raise InvalidReturnStatus(status=status)
    cursor = request.GET.get("cursor", "").strip()
    page = list_returns(status=status, cursor=cursor or None, limit=PAGE_SIZE)
    next_cursor, href = page["next_cursor"], order_hrefs()
    return {
        "returns": [return_row(item, href) for item in page["items"]],
        "tabs": [(tab.value, tab == status) for tab in TABS],
        "status": status,
        "cursor": cursor,
        "next_cursor": next_cursor,
        "first_page_query": urlencode({"status": status}),
        "next_page_query": urlencode({"status": status, "cursor": next_cursor})
        if next_cursor
        else "",
    }
