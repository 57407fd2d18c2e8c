"""Reads of returns: for the API, for the order's detail, and for fulfilment's rules."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, Q, QuerySet, Sum

from shopkeeper.fulfilment.selectors import ReturnFacts
from shopkeeper.keyset import decode_cursor, encode_cursor
from shopkeeper.orders.models import Order
from shopkeeper.refunds.models import RefundLine
from shopkeeper.refunds.rules import COUNTED_STATUSES
from shopkeeper.returns.models import Return, ReturnLine
from shopkeeper.returns.states import OPEN_STATUSES, ReturnStatus


def facts_for_fulfilment(order: Order) -> ReturnFacts:
    refunded = (
        RefundLine.objects.filter(
            refund__order=order,
            refund__status__in=COUNTED_STATUSES,
            refund__in=Return.objects.filter(order=order).values("refund"),
        )
        .values_list("order_line_id")
        .annotate(quantity=Sum("quantity"))
    )
    return ReturnFacts(
        refunded_through_returns={line: int(quantity) for line, quantity in refunded},
        open_returns=Return.objects.filter(order=order, status__in=OPEN_STATUSES).exists(),
    )


def returned_quantities(order: Order) -> dict[int, int]:
    """Units received back per order line (returns received or refunded)."""
    rows = (
        ReturnLine.objects.filter(
            return_request__order=order,
            return_request__status__in=(ReturnStatus.RECEIVED, ReturnStatus.REFUNDED),
        )
        .values_list("order_line_id")
        .annotate(quantity=Sum("received_quantity"))
    )
    return {line: int(quantity) for line, quantity in rows}


def _with_lines(returns: QuerySet[Return]) -> QuerySet[Return]:
    """Returns with their order, refund and lines: a page of them in three statements."""
    lines = ReturnLine.objects.select_related("order_line").order_by("id")
    return returns.select_related("order", "refund").prefetch_related(Prefetch("lines", lines))


def return_data(returned: Return) -> dict[str, Any]:
    """A return read through `_with_lines` (its lines prefetched)."""
    lines = returned.lines.all()
    return {
        "id": returned.pk,
        "order_number": returned.order.number,
        "status": returned.status,
        "source": returned.source,
        "note": returned.note,
        "reject_note": returned.reject_note,
        "created_at": returned.created_at,
        "received_at": returned.received_at,
        "finished_at": returned.finished_at,
        "refund_id": returned.refund_id,
        "refund_status": returned.refund.status if returned.refund is not None else None,
        "lines": [
            {
                "line_id": line.order_line_id,
                "sku": line.order_line.sku,
                "quantity": line.quantity,
                "reason": line.reason,
                "received_quantity": line.received_quantity,
                "restock": line.restock,
            }
            for line in lines
        ],
    }


def get_return(return_id: int) -> Return:
    from shopkeeper.returns.services import ReturnNotFound

    found = _with_lines(Return.objects.filter(pk=return_id)).first()
    if found is None:
        raise ReturnNotFound(return_id=return_id)
    return found


def list_returns(
    *, status: str | None = None, cursor: str | None = None, limit: int = 25
) -> dict[str, Any]:
    """Newest first, by keyset over (created_at, id), as the orders list."""
    returns = _with_lines(Return.objects.order_by("-created_at", "-id"))
    if status:
        returns = returns.filter(status=status)
    if cursor:
        at, pk = decode_cursor(cursor)
        returns = returns.filter(Q(created_at__lt=at) | Q(created_at=at, pk__lt=pk))
    page = list(returns[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return {
        "items": [return_data(r) for r in page],
        "next_cursor": encode_cursor(page[-1].created_at, page[-1].pk) if more and page else None,
    }
