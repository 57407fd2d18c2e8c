"""Returns: asked for, received (with restock), refunded through the refund engine, rejected.

Each change runs under the order's row lock with its audit entry in one transaction. The refund
of a return is an ordinary line refund made by `refunds.services.request_refund` (limits,
approval, Stripe's idempotency key, exactly once), for the received units only; the return
follows its refund's outcome (`follow_refund`, registered in `refunds.settled`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record_for_order
from shopkeeper.errors import Conflict, NotFound
from shopkeeper.fulfilment.closing import close_if_done
from shopkeeper.fulfilment.selectors import shipped_quantities
from shopkeeper.notifications.kinds import Kind
from shopkeeper.notifications.services import notify
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.orders.stock import restock_line
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.outcomes import refund_details
from shopkeeper.refunds.rules import COUNTED_STATUSES, LineRequest, RefundStatus
from shopkeeper.refunds.services import request_refund
from shopkeeper.returns.models import Return, ReturnLine
from shopkeeper.returns.rules import (
    LineReturnable,
    ReceivedLine,
    ReturnLineRequest,
    ensure_note,
    plan_receipt,
    plan_return,
    refund_quantities,
)
from shopkeeper.returns.states import HOLDING_STATUSES, ReturnSource, ReturnStatus, move_return


class ReturnNotFound(NotFound):
    code = "return_not_found"
    title = "No return with this id"


class ReturnAlreadyReceived(Conflict):
    code = "return_not_requested"
    title = "Only a requested return can be received (this one was received or rejected)"


class ReturnRefundExists(Conflict):
    code = "return_refund_exists"
    title = "This return already has a refund that has not failed"


@transaction.atomic
def request_return(
    *,
    order_number: str,
    lines: Sequence[ReturnLineRequest],
    note: str = "",
    actor: Actor | None,
    source: ReturnSource = ReturnSource.STAFF,
    actor_label: str = "",
) -> Return:
    """Ask for shipped units back (422 quantity_exceeds_returnable beyond what shipped and is
    not in another return)."""
    note = ensure_note(note)
    order = lock_order(number=order_number)
    order_lines = {line.sku: line for line in order.lines.order_by("id")}
    planned = plan_return(_returnable(order, order_lines.values()), lines)
    created = Return.objects.create(
        order=order, source=source, note=note, requested_by=actor, status=ReturnStatus.REQUESTED
    )
    ReturnLine.objects.bulk_create(
        ReturnLine(
            return_request=created,
            order_line=order_lines[line.sku],
            quantity=line.quantity,
            reason=line.reason,
        )
        for line in planned
    )
    record_for_order(
        order,
        action="order.return.requested",
        actor=actor,
        actor_label=actor_label,
        after={"return": created.pk, "source": str(source)},
        details={
            "lines": [[line.sku, line.quantity, line.reason] for line in planned],
            "note": note,
        },
    )
    return created


def _returnable(order: Order, lines: Iterable[OrderLine]) -> list[LineReturnable]:
    shipped = shipped_quantities(order)
    held = dict(
        ReturnLine.objects.filter(
            return_request__order=order, return_request__status__in=HOLDING_STATUSES
        )
        .values_list("order_line_id")
        .annotate(quantity=Sum("quantity"))
    )
    return [
        LineReturnable(line.sku, shipped.get(line.pk, 0), int(held.get(line.pk, 0)))
        for line in lines
    ]


def _locked(return_id: int) -> tuple[Order, Return]:
    found = Return.objects.filter(pk=return_id).values_list("order_id", flat=True).first()
    if found is None:
        raise ReturnNotFound(return_id=return_id)
    order = lock_order(pk=found)
    return order, Return.objects.select_for_update().get(pk=return_id)


@transaction.atomic
def receive_return(
    *, return_id: int, lines: Sequence[ReceivedLine] | None = None, actor: Actor
) -> Return:
    """The goods are back: what came (≤ what was asked), restocked where marked so."""
    order, returned = _locked(return_id)
    if returned.status != ReturnStatus.REQUESTED:  # a second receipt would restock twice
        raise ReturnAlreadyReceived(return_status=returned.status)
    returned.status = move_return(returned.status, ReturnStatus.RECEIVED)
    return_lines = {
        line.order_line.sku: line for line in returned.lines.select_related("order_line")
    }
    received = plan_receipt({sku: line.quantity for sku, line in return_lines.items()}, lines)
    restocked: dict[str, int] = {}
    for line in received:
        row = return_lines[line.sku]
        row.received_quantity, row.restock = line.quantity, line.restock
        row.save(update_fields=["received_quantity", "restock"])
        if line.restock and line.quantity:
            restocked[line.sku] = restock_line(row.order_line, line.quantity)
    returned.received_at = timezone.now()
    returned.save(update_fields=["status", "received_at"])
    record_for_order(
        order,
        action="order.return.received",
        actor=actor,
        after={"return": returned.pk, "status": returned.status},
        details={
            "lines": [[line.sku, line.quantity] for line in received],
            "restocked": restocked,
        },
    )
    notify(
        order,
        Kind.RETURN_RECEIVED,
        event_key=f"return:{returned.pk}",
        lines=[
            [return_lines[line.sku].order_line.name, line.quantity]
            for line in received
            if line.quantity
        ],
    )
    return returned


def refund_return(
    *, return_id: int, include_shipping: bool = False, notify_customer: bool = True, actor: Actor
) -> Refund:
    """Refund the received units through the refund engine; the return follows the refund.

    The customer hears "return refunded" (`follow_refund`) unless not `notify_customer`, and
    never also "refund made"."""
    order_number, requests = _refund_request(return_id)
    refund = request_refund(
        order_number=order_number,
        actor=actor,
        reason="requested_by_customer",
        lines=requests,
        include_shipping=include_shipping,
        note=_refund_note(return_id),
        notify_customer=False,
    )
    with transaction.atomic():
        order, returned = _locked(return_id)
        returned.refund, returned.notify_customer = refund, notify_customer
        returned.save(update_fields=["refund", "notify_customer"])
        refund.refresh_from_db()
        follow_refund(order, refund)
    return refund


RETURN_REFUND_NOTE = "Refund of return "


def _refund_note(return_id: int) -> str:
    return f"{RETURN_REFUND_NOTE}{return_id}"


def _refunds_of(order: Order, return_id: int) -> QuerySet[Refund]:
    """The refunds made for a return, linked or not yet (the link is written after the refund
    is recorded; a crash between the two leaves the note, which names the return)."""
    return Refund.objects.filter(order=order, note=_refund_note(return_id))


@transaction.atomic
def _refund_request(return_id: int) -> tuple[str, list[LineRequest]]:
    order, returned = _locked(return_id)
    if returned.status == ReturnStatus.REFUNDED:
        raise ReturnRefundExists("This return is refunded already", refund_id=returned.refund_id)
    move_return(returned.status, ReturnStatus.REFUNDED)  # refuses requested and rejected
    live = _refunds_of(order, return_id).filter(status__in=COUNTED_STATUSES).first()
    if live is not None:
        raise ReturnRefundExists(refund_id=live.pk, refund_status=live.status)
    lines = {line.order_line.sku: line for line in returned.lines.select_related("order_line")}
    quantities = refund_quantities(
        [ReceivedLine(sku, line.received_quantity, line.restock) for sku, line in lines.items()]
    )
    # Restocked on receipt already: the refund does not restock again.
    requests = [
        LineRequest(line_id=lines[sku].order_line_id, quantity=quantity, restock=False)
        for sku, quantity in quantities.items()
    ]
    return order.number, requests


def follow_refund(order: Order, refund: Refund) -> None:
    """A return is refunded once its refund succeeds (its order may then close). Other refunds
    cost no statement: only a return's refund carries its note."""
    if not refund.note.startswith(RETURN_REFUND_NOTE):
        return
    returned = Return.objects.select_for_update().filter(refund=refund).first()
    if returned is None or returned.status != ReturnStatus.RECEIVED:
        return
    if refund.status != RefundStatus.SUCCEEDED:
        return
    returned.status = move_return(returned.status, ReturnStatus.REFUNDED)
    returned.finished_at = timezone.now()
    returned.save(update_fields=["status", "finished_at"])
    record_for_order(
        order,
        action="order.return.refunded",
        actor_label="Stripe",
        after={"return": returned.pk, "status": returned.status, "refund": refund.pk},
        details={"amount": str(refund.money)},
    )
    if returned.notify_customer:
        details = refund_details(refund)
        notify(order, Kind.RETURN_REFUNDED, event_key=f"return:{returned.pk}", **details)
    close_if_done(order, actor=None, actor_label="Stripe")


@transaction.atomic
def reject_return(*, return_id: int, note: str, actor: Actor) -> Return:
    order, returned = _locked(return_id)
    note = ensure_note(note)
    returned.status = move_return(returned.status, ReturnStatus.REJECTED)
    if _refunds_of(order, return_id).filter(status__in=COUNTED_STATUSES).exists():
        raise ReturnRefundExists(
            "This return has a refund under way or made: it cannot be rejected"
        )
    returned.reject_note, returned.finished_at = note, timezone.now()
    returned.save(update_fields=["status", "reject_note", "finished_at"])
    record_for_order(
        order,
        action="order.return.rejected",
        actor=actor,
        after={"return": returned.pk, "status": returned.status},
        details={"note": note},
    )
    close_if_done(order, actor=actor)
    return returned
