"""Admin API for returns: ask, receive (with restock), refund, reject; the returns queue."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Status

from shopkeeper.accounts.access import acting_staff, ensure_can, requires
from shopkeeper.accounts.api_auth import GuardedRouter, api_auth
from shopkeeper.accounts.permissions import Permission
from shopkeeper.idempotency.api import idempotent
from shopkeeper.refunds.selectors import refund_data
from shopkeeper.returns import services
from shopkeeper.returns.rules import ReceivedLine, ReturnLineRequest
from shopkeeper.returns.schemas import (
    ReceiveIn,
    RejectIn,
    ReturnIn,
    ReturnOut,
    ReturnPageOut,
    ReturnRefundIn,
    ReturnRefundOut,
)
from shopkeeper.returns.selectors import get_return, list_returns, return_data
from shopkeeper.returns.states import ReturnStatus

router = GuardedRouter(tags=["returns"], auth=api_auth)


@router.post("/orders/{number}/returns", response={201: ReturnOut})
@requires(Permission.RETURNS_MANAGE)
@idempotent
def create_return(request: HttpRequest, number: str, payload: ReturnIn) -> Status[dict[str, Any]]:
    """Ask for shipped units back, each with a reason (damaged, wrong_item, not_as_described,
    no_longer_needed, other)."""
    created = services.request_return(
        order_number=number,
        lines=[ReturnLineRequest(line.sku, line.quantity, line.reason) for line in payload.lines],
        note=payload.note,
        actor=acting_staff(request),
    )
    return Status(201, return_data(get_return(created.pk)))


@router.post("/returns/{return_id}/receive", response=ReturnOut)
@requires(Permission.RETURNS_MANAGE)
@idempotent
def receive_return(
    request: HttpRequest, return_id: int, payload: ReceiveIn | None = None
) -> dict[str, Any]:
    """The goods are back: what came (no more than asked), restocked where `restock`."""
    lines = None
    if payload is not None and payload.lines is not None:
        lines = [ReceivedLine(line.sku, line.quantity, line.restock) for line in payload.lines]
    services.receive_return(return_id=return_id, lines=lines, actor=acting_staff(request))
    return return_data(get_return(return_id))


@router.post("/returns/{return_id}/refund", response={201: ReturnRefundOut})
@requires(Permission.ORDERS_REFUND)
@idempotent
def refund_return(
    request: HttpRequest, return_id: int, payload: ReturnRefundIn | None = None
) -> Status[dict[str, Any]]:
    """Refund the received units (and the shipping fee if `include_shipping`) through the refund
    engine: its limits and approval apply. Send an `Idempotency-Key` header."""
    ensure_can(request, Permission.RETURNS_MANAGE)
    refund = services.refund_return(
        return_id=return_id,
        include_shipping=payload.include_shipping if payload else False,
        notify_customer=payload.notify_customer if payload else True,
        actor=acting_staff(request),
    )
    return Status(
        201, {"refund": refund_data(refund), "return": return_data(get_return(return_id))}
    )


@router.post("/returns/{return_id}/reject", response=ReturnOut)
@requires(Permission.RETURNS_MANAGE)
def reject_return(
    request: HttpRequest, return_id: int, payload: RejectIn | None = None
) -> dict[str, Any]:
    services.reject_return(
        return_id=return_id, note=payload.note if payload else "", actor=acting_staff(request)
    )
    return return_data(get_return(return_id))


@router.get("/returns", response=ReturnPageOut)
@requires(Permission.ORDERS_VIEW)
def returns(
    request: HttpRequest,
    status: ReturnStatus | None = None,
    cursor: str | None = None,
    limit: int = Query(25, ge=1, le=100),
) -> dict[str, Any]:
    """Newest first; `?status=requested` is the queue of returns to receive."""
    return list_returns(status=status, cursor=cursor, limit=limit)


@router.get("/returns/{return_id}", response=ReturnOut)
@requires(Permission.ORDERS_VIEW)
def one_return(request: HttpRequest, return_id: int) -> dict[str, Any]:
    return return_data(get_return(return_id))
