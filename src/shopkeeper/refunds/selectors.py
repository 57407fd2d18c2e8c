"""Reads of refunds: what open refunds reserve, what lines they claim, and the API shape."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Model, Q, QuerySet, Sum

from shopkeeper.money import amount_fields
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import OrderLedger, ledger_rows_sql, order_balance
from shopkeeper.refunds.models import Refund, RefundLine
from shopkeeper.refunds.rules import (
    COUNTED_STATUSES,
    LIMIT_COUNTED_STATUSES,
    RESERVING_STATUSES,
    LineFacts,
    OrderFacts,
    RefundNotFound,
    RefundStatus,
)


def reserved_minor(order: Order) -> int:
    """Money held back by refunds still open (pending at Stripe or awaiting approval)."""
    total = Refund.objects.filter(order=order, status__in=RESERVING_STATUSES).aggregate(
        total=Sum("amount_minor")
    )["total"]
    return int(total or 0)


def _unapproved() -> QuerySet[Refund]:
    """Refunds asked for here that went ahead without a second person: what the limits count.

    An approved refund has `decided_at` (kept even if its approver's account is deleted).
    """
    return Refund.objects.filter(
        source=Refund.Source.SHOPKEEPER,
        status__in=LIMIT_COUNTED_STATUSES,
        decided_at__isnull=True,
    )


def _total(refunds: QuerySet[Refund]) -> int:
    return int(refunds.aggregate(total=Sum("amount_minor"))["total"] or 0)


def unapproved_on_order_minor(order: Order) -> int:
    """What the order's refunds nobody approved add up to, whoever asked for them."""
    return _total(_unapproved().filter(order=order))


def unapproved_by_staff_minor(*, staff_id: int, currency: str, since: datetime) -> int:
    """What one member of staff refunded without approval since `since`, in one currency."""
    return _total(
        _unapproved().filter(requested_by_id=staff_id, currency=currency, created_at__gte=since)
    )


def refundable_minor(order: Order) -> int:
    return order_balance(order).refundable(reserved_minor(order))


def has_refund_in_progress(order: Order) -> bool:
    """True while a refund is pending at Stripe or awaiting approval (blocks cancellation)."""
    return Refund.objects.filter(order=order, status__in=RESERVING_STATUSES).exists()


def has_refund_in_flight(order: Order) -> bool:
    """True while a refund has been sent to Stripe (or is about to be) without an answer yet."""
    return (
        Refund.objects.filter(order=order, status=RefundStatus.PENDING)
        .filter(Q(stripe_refund_id__isnull=True) | Q(stripe_refund_id=""))
        .exists()
    )


def refunded_quantities(order: Order) -> dict[int, int]:
    rows = (
        RefundLine.objects.filter(refund__order=order, refund__status__in=COUNTED_STATUSES)
        .values("order_line_id")
        .annotate(quantity=Sum("quantity"))
    )
    return {row["order_line_id"]: int(row["quantity"]) for row in rows}


def order_facts(order: Order) -> OrderFacts:
    """What the refund rules need to know about an order (read under the order's lock)."""
    refunded = refunded_quantities(order)
    return OrderFacts(
        currency=order.currency,
        payment_status=order.payment_status,
        refundable_minor=refundable_minor(order),
        shipping_minor=order.shipping_minor,
        shipping_refunded=Refund.objects.filter(
            order=order, include_shipping=True, status__in=COUNTED_STATUSES
        ).exists(),
        lines={
            line.pk: LineFacts(
                unit_price_minor=line.unit_price_minor,
                quantity=line.quantity,
                refunded_quantity=refunded.get(line.pk, 0),
            )
            for line in order.lines.all()
        },
    )


def refund_data(refund: Refund, *, lines: Iterable[RefundLine] | None = None) -> dict[str, Any]:
    """One refund as the API shows it (`RefundOut`); `lines`: its lines, if already read."""
    return {
        "id": refund.pk,
        "order_number": refund.order.number,
        "status": refund.status,
        **amount_fields("amount", refund.amount_minor, refund.currency),
        "currency": refund.currency,
        "reason": refund.reason,
        "note": refund.note,
        "include_shipping": refund.include_shipping,
        "lines": [
            {
                "line_id": line.order_line_id,
                "sku": line.order_line.sku,
                "name": line.order_line.name,
                "quantity": line.quantity,
                "restock": line.restock,
                **amount_fields("amount", line.amount_minor, refund.currency),
            }
            for line in (refund.lines.all() if lines is None else lines)
        ],
        "stripe_refund_id": refund.stripe_refund_id,
        "failure_message": refund.failure_message,
        "source": refund.source,
        "attempts": refund.attempts,
        "requested_by": refund.requested_by.email if refund.requested_by else None,
        "requested_by_id": refund.requested_by_id,
        "decided_by": refund.decided_by.email if refund.decided_by else None,
        "decided_at": refund.decided_at,
        "decision_note": refund.decision_note,
        "created_at": refund.created_at,
        "updated_at": refund.updated_at,
    }


def get_refund(refund_id: int) -> Refund:
    refund = Refund.objects.select_related("order").filter(pk=refund_id).first()
    if refund is None:
        raise RefundNotFound(f"No refund {refund_id}", refund_id=refund_id)
    return refund


def list_refunds(*, status: str | None = None, limit: int = 100) -> list[Refund]:
    refunds = Refund.objects.select_related("order", "requested_by", "decided_by")
    if status:
        refunds = refunds.filter(status=status)
    return list(refunds.prefetch_related("lines__order_line").order_by("-id")[:limit])


# --- what a refund request reads under the order's lock, in one statement --------------------


@dataclass(frozen=True, slots=True)
class ReservationFacts:
    """Everything `request_refund` decides on, read once the order is locked."""

    facts: OrderFacts
    ledger: OrderLedger
    payment: Payment | None  # the payment to refund: the newest captured one, else the newest
    order_unapproved_minor: int  # refunds on the order that went ahead without approval
    staff_day_unapproved_minor: int  # the requester's own over 24 hours (0 if not asked)


def _table(model: type[Model]) -> str:
    return model._meta.db_table


# Written once, by hand: the ORM form cost several ms of CPU to compile on every request. The
# sums are those of `_unapproved()`, `reserved_minor` and `refunded_quantities` above.
_RESERVATION = f"""
    SELECT
        {ledger_rows_sql("%(order)s")},
        ARRAY(SELECT jsonb_build_object(
                  'id', l.id, 'unit_price_minor', l.unit_price_minor, 'quantity', l.quantity,
                  'claimed', COALESCE((
                      SELECT SUM(rl.quantity) FROM {_table(RefundLine)} rl
                      JOIN {_table(Refund)} cr ON cr.id = rl.refund_id
                      WHERE rl.order_line_id = l.id AND cr.status = ANY(%(counted)s)), 0))
              FROM {_table(OrderLine)} l WHERE l.order_id = %(order)s ORDER BY l.id),
        ARRAY(SELECT jsonb_build_object(
                  'id', p.id, 'intent_id', p.intent_id, 'currency', p.currency,
                  'order_id', p.order_id)
              FROM {_table(Payment)} p WHERE p.order_id = %(order)s ORDER BY p.id DESC),
        ARRAY(SELECT jsonb_build_object(
                  'status', r.status, 'amount_minor', r.amount_minor,
                  'include_shipping', r.include_shipping, 'source', r.source,
                  'decided', r.decided_at IS NOT NULL)
              FROM {_table(Refund)} r WHERE r.order_id = %(order)s ORDER BY r.id),
        COALESCE((
            SELECT SUM(r.amount_minor) FROM {_table(Refund)} r
            WHERE %(staff)s::bigint IS NOT NULL AND r.requested_by_id = %(staff)s
              AND r.source = %(shopkeeper)s AND r.status = ANY(%(limit_counted)s)
              AND r.decided_at IS NULL AND r.currency = %(currency)s
              AND r.created_at >= %(since)s), 0)
"""


def reservation_facts(
    order: Order, *, staff_id: int | None = None, since: datetime | None = None
) -> ReservationFacts:
    """One statement: the order's ledger, payments, refunds and lines (with the units refunds
    claim), and, with `staff_id`, what that person refunded without approval since `since`
    (read after their row is locked: `approval.lock_staff`)."""
    params: dict[str, Any] = {
        "order": order.pk,
        "counted": [str(status) for status in COUNTED_STATUSES],
        "limit_counted": [str(status) for status in LIMIT_COUNTED_STATUSES],
        "shopkeeper": str(Refund.Source.SHOPKEEPER),
        "staff": staff_id if since is not None else None,
        "currency": order.currency,
        "since": since,
    }
    with connection.cursor() as cursor:
        cursor.execute(_RESERVATION, params)
        ledger, lines, payments, refunds, day = cursor.fetchone()
    row = {
        "ledger_rows": [_json(item) for item in ledger],
        "line_rows": [_json(item) for item in lines],
        "payment_rows": [_json(item) for item in payments],
        "refund_rows": [_json(item) for item in refunds],
        "staff_day": day,
    }
    return _reservation_facts(order, row)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _reservation_facts(order: Order, row: Mapping[str, Any]) -> ReservationFacts:
    ledger = OrderLedger.from_json(row["ledger_rows"])
    refunds = row["refund_rows"] or []
    reserved = sum(r["amount_minor"] for r in refunds if r["status"] in RESERVING_STATUSES)
    unapproved = sum(
        r["amount_minor"]
        for r in refunds
        if r["source"] == Refund.Source.SHOPKEEPER
        and r["status"] in LIMIT_COUNTED_STATUSES
        and not r["decided"]
    )
    facts = OrderFacts(
        currency=order.currency,
        payment_status=order.payment_status,
        refundable_minor=ledger.balance().refundable(reserved),
        shipping_minor=order.shipping_minor,
        shipping_refunded=any(
            r["include_shipping"] and r["status"] in COUNTED_STATUSES for r in refunds
        ),
        lines={
            line["id"]: LineFacts(
                unit_price_minor=line["unit_price_minor"],
                quantity=line["quantity"],
                refunded_quantity=line["claimed"],
            )
            for line in row["line_rows"] or []
        },
    )
    payments = [Payment(**p) for p in row["payment_rows"] or []]
    captured = ledger.captured_payment_ids()
    payment = next((p for p in payments if p.pk in captured), payments[0] if payments else None)
    return ReservationFacts(facts, ledger, payment, unapproved, int(row["staff_day"] or 0))
