"""Admin API for orders: list, detail, timeline, cancel, capture. Rules live in the services."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Status

from shopkeeper.accounts.access import acting_staff, requires
from shopkeeper.accounts.api_auth import GuardedRouter, api_auth
from shopkeeper.accounts.permissions import Permission
from shopkeeper.idempotency.api import idempotent
from shopkeeper.orders import lookups, notes, services
from shopkeeper.orders.schemas import (
    CancelIn,
    CaptureIn,
    NoteIn,
    NoteOut,
    OrderEventOut,
    OrderOut,
    OrderPageOut,
)
from shopkeeper.orders.states import OrderStatus
from shopkeeper.orders_view import selectors
from shopkeeper.payments.states import PaymentStatus

router = GuardedRouter(tags=["orders"], auth=api_auth)


@router.get("", response=OrderPageOut)
@requires(Permission.ORDERS_VIEW)
def list_orders(
    request: HttpRequest,
    status: OrderStatus | None = None,
    payment_status: PaymentStatus | None = None,
    q: str | None = Query(None, max_length=200),
    cursor: str | None = Query(None, max_length=200),
    limit: int = Query(25, ge=1, le=100),
    needs_attention: bool | None = None,
    authorization_expiring: bool | None = None,
) -> dict[str, Any]:
    """Newest first. Filter by status, payment status, `q` (an order number or a customer's
    e-mail: those orders; else part of the number, the e-mail or the customer's name, at least
    3 characters: `search_too_short` otherwise), `needs_attention=true`: the orders flagged
    for a person, or `authorization_expiring=true`: the orders whose authorisation is past
    SHOPKEEPER_AUTH_WARN_AFTER, not captured yet."""
    return selectors.list_orders(
        status=status,
        payment_status=payment_status,
        q=q,
        cursor=cursor,
        limit=limit,
        needs_attention=needs_attention,
        authorization_expiring=authorization_expiring,
    )


@router.get("/{number}", response=OrderOut)
@requires(Permission.ORDERS_VIEW)
def get_order(request: HttpRequest, number: str) -> dict[str, Any]:
    return selectors.order_detail(lookups.get_order(number), actor=acting_staff(request))


@router.get("/{number}/events", response=list[OrderEventOut])
@requires(Permission.ORDERS_VIEW)
def order_events(request: HttpRequest, number: str) -> list[dict[str, Any]]:
    """The order's timeline, oldest first: audit entries and ledger movements."""
    return selectors.order_events(lookups.get_order(number))


@router.post("/{number}/cancel", response=OrderOut)
@requires(Permission.ORDERS_CANCEL)
def cancel_order(request: HttpRequest, number: str, payload: CancelIn) -> dict[str, Any]:
    actor = acting_staff(request)
    order = services.cancel_order(
        order_number=number,
        reason=payload.reason,
        actor=actor,
        notify_customer=payload.notify_customer,
    )
    return selectors.order_detail(order, actor=actor)


@router.post("/{number}/notes", response={201: NoteOut})
@requires(Permission.ORDERS_NOTE)
@idempotent
def add_note(request: HttpRequest, number: str, payload: NoteIn) -> Status[dict[str, Any]]:
    """A note for staff in the order's timeline (audited; never shown to the customer)."""
    entry = notes.add_note(order_number=number, text=payload.text, actor=acting_staff(request))
    return Status(
        201,
        {
            "id": entry.seq,
            "text": entry.details["text"],
            "author": entry.actor_email,
            "created_at": entry.created_at,
        },
    )


@router.post("/{number}/capture", response=OrderOut)
@requires(Permission.ORDERS_CAPTURE)
def capture_order(request: HttpRequest, number: str, payload: CaptureIn) -> dict[str, Any]:
    actor = acting_staff(request)
    order = services.capture_order(order_number=number, amount=payload.amount, actor=actor)
    return selectors.order_detail(order, actor=actor)
