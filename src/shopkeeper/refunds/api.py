"""Admin API for refunds. The rules live in `refunds.services`; errors are problem+json.

A refund Stripe refuses is still created: the answer is 201 with `refund.status = "failed"` and
`refund.failure_message` saying why, so the caller sees the refund row it caused.
"""

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Query, Status

from shopkeeper.accounts.access import acting_staff, requires
from shopkeeper.accounts.actors import Actor
from shopkeeper.accounts.api_auth import GuardedRouter, api_auth
from shopkeeper.accounts.permissions import Permission
from shopkeeper.answers import shaped
from shopkeeper.idempotency.api import idempotent
from shopkeeper.orders.models import Order
from shopkeeper.orders.schemas import RefundOut
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.refunds import services
from shopkeeper.refunds.approval import preview_refund
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import LineRequest, RefundStatus
from shopkeeper.refunds.schemas import (
    DecisionIn,
    RefundIn,
    RefundPreviewIn,
    RefundPreviewOut,
    RefundWithOrderOut,
)
from shopkeeper.refunds.selectors import get_refund, list_refunds, refund_data

router = GuardedRouter(tags=["refunds"], auth=api_auth)


def refund_now(request: HttpRequest, refund_key: uuid.UUID) -> Status[dict[str, Any]] | None:
    """What a refund request's Idempotency-Key answers once its refund exists: its state now."""
    refund = Refund.objects.filter(key=refund_key).only("pk", "order_id").first()
    if refund is None:
        return None
    return Status(201, refund_with_order(refund, acting_staff(request)))


@router.post("/orders/{number}/refunds", response={201: RefundWithOrderOut})
@requires(Permission.ORDERS_REFUND)
@idempotent(answer=refund_now)
def create_refund(request: HttpRequest, number: str, payload: RefundIn) -> Status[dict[str, Any]]:
    """Refund an amount, or lines (with restock) and/or the shipping fee, of a captured order.

    Send an `Idempotency-Key` header so a retried request refunds once.
    """
    actor = acting_staff(request)
    refund = services.request_refund(
        order_number=number,
        actor=actor,
        reason=payload.reason,
        amount=payload.amount,
        lines=[
            LineRequest(line_id=line.line_id, quantity=line.quantity, restock=line.restock)
            for line in payload.lines or ()
        ],
        include_shipping=payload.include_shipping,
        note=payload.note,
        notify_customer=payload.notify_customer,
    )
    return Status(201, refund_with_order(refund, actor))


@router.post("/orders/{number}/refunds/preview", response=RefundPreviewOut)
@requires(Permission.ORDERS_REFUND)
def preview_refund_request(
    request: HttpRequest, number: str, payload: RefundPreviewIn
) -> dict[str, Any]:
    """What this refund would refund, and whether it would wait for a manager's approval.

    Nothing is reserved or sent; the answer may change before the refund is asked for.
    """
    return preview_refund(
        order_number=number,
        actor=acting_staff(request),
        amount=payload.amount,
        lines=[
            LineRequest(line_id=line.line_id, quantity=line.quantity, restock=line.restock)
            for line in payload.lines or ()
        ],
        include_shipping=payload.include_shipping,
    )


@router.post("/refunds/{refund_id}/approve", response=RefundWithOrderOut)
@requires(Permission.REFUNDS_APPROVE)
@idempotent
def approve_refund(
    request: HttpRequest, refund_id: int, payload: DecisionIn | None = None
) -> dict[str, Any]:
    """Approve a refund awaiting approval (not your own request); it is then sent to Stripe."""
    actor = acting_staff(request)
    refund = services.approve_refund(
        refund_id=refund_id, actor=actor, note=payload.note if payload else ""
    )
    return refund_with_order(refund, actor)


@router.post("/refunds/{refund_id}/reject", response=RefundWithOrderOut)
@requires(Permission.REFUNDS_APPROVE)
@idempotent
def reject_refund(
    request: HttpRequest, refund_id: int, payload: DecisionIn | None = None
) -> dict[str, Any]:
    """Reject a refund awaiting approval; the amount it held back is released."""
    actor = acting_staff(request)
    refund = services.reject_refund(
        refund_id=refund_id, actor=actor, note=payload.note if payload else ""
    )
    return refund_with_order(refund, actor)


@router.get("/refunds", response=list[RefundOut])
@requires(Permission.ORDERS_VIEW)
def refunds(
    request: HttpRequest,
    status: RefundStatus | None = None,
    limit: int = Query(50, ge=1, le=200),
) -> list[dict[str, Any]]:
    """Newest first; `?status=awaiting_approval` is the approval queue."""
    return [refund_data(refund) for refund in list_refunds(status=status, limit=limit)]


@router.get("/refunds/{refund_id}", response=RefundWithOrderOut)
@requires(Permission.ORDERS_VIEW)
def refund(request: HttpRequest, refund_id: int) -> dict[str, Any]:
    return refund_with_order(get_refund(refund_id), acting_staff(request))


def refund_with_order(refund: Refund, actor: Actor) -> dict[str, Any]:
    """The refund and its order as they are now: the order's detail holds the refund (one
    statement for both), shaped as RefundWithOrderOut."""
    order = order_detail(Order(pk=refund.order_id), actor=actor)
    shown = next(r for r in order["refunds"] if r["id"] == refund.pk)
    return shaped(RefundWithOrderOut, {"refund": shown, "order": order})
