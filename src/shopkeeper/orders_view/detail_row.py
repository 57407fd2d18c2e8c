"""The order detail's one statement: the order row with its lines, newest payment, ledger,
refunds (with their lines and who asked and decided), disputes and open flags, each as a JSON
array beside it. The detail (an API answer, the order page, a refund's 201) used to take about
14 statements; the rows come back as model instances, so the shapes stay those of the features'
own `*_data` functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from django.contrib.auth import get_user_model
from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Model, OuterRef, QuerySet
from django.db.models.functions import JSONObject

from shopkeeper.disputes.models import Dispute
from shopkeeper.orders.lookups import OrderNotFound
from shopkeeper.orders.models import Attention, Order, OrderLine
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import OrderLedger, ledger_rows
from shopkeeper.refunds.models import Refund, RefundLine

M = TypeVar("M", bound=Model)


@dataclass(frozen=True, slots=True)
class DetailRows:
    order: Order
    lines: list[OrderLine]
    payment: Payment | None
    ledger: OrderLedger
    refunds: list[tuple[Refund, list[RefundLine]]]
    disputes: list[Dispute]
    attention: list[Attention]


def _columns(model: type[Model]) -> dict[str, str]:
    return {f.attname: f.attname for f in model._meta.concrete_fields}


def _json_rows(rows: QuerySet[Any], **extra: Any) -> ArraySubquery:
    return ArraySubquery(rows.values(json=JSONObject(**_columns(rows.model), **extra)))


def from_json(model: type[M], row: dict[str, Any]) -> M:
    """A model instance from its row as JSON (values converted as the field reads them)."""
    fields = model._meta.concrete_fields
    return model(**{f.attname: f.to_python(row[f.attname]) for f in fields if f.attname in row})


def detail_rows(order_id: int) -> DetailRows:
    here = OuterRef("pk")
    refund_lines = RefundLine.objects.filter(refund=OuterRef("pk")).order_by("id")
    refunds = Refund.objects.filter(order=here).order_by("id")
    row = (
        Order.objects.filter(pk=order_id)
        .annotate(
            line_rows=_json_rows(OrderLine.objects.filter(order=here).order_by("id")),
            payment_rows=_json_rows(Payment.objects.filter(order=here).order_by("-id")[:1]),
            ledger_rows=ledger_rows(here),
            refund_rows=_json_rows(
                refunds,
                line_rows=_json_rows(refund_lines),
                requested_by_email="requested_by__email",
                decided_by_email="decided_by__email",
            ),
            dispute_rows=_json_rows(Dispute.objects.filter(order=here).order_by("id")),
            attention_rows=_json_rows(
                Attention.objects.filter(order=here, resolved_at__isnull=True).order_by("id")
            ),
        )
        .first()
    )
    if row is None:
        raise OrderNotFound(f"No order {order_id!r}")
    return _rows(row)


def _rows(order: Any) -> DetailRows:
    lines = [from_json(OrderLine, line) for line in order.line_rows or ()]
    by_id = {line.pk: line for line in lines}
    payments = [from_json(Payment, payment) for payment in order.payment_rows or ()]
    return DetailRows(
        order=order,
        lines=lines,
        payment=payments[0] if payments else None,
        ledger=OrderLedger.from_json(order.ledger_rows),
        refunds=[_refund(order, row, by_id) for row in order.refund_rows or ()],
        disputes=[from_json(Dispute, dispute) for dispute in order.dispute_rows or ()],
        attention=[from_json(Attention, flag) for flag in order.attention_rows or ()],
    )


def _refund(
    order: Order, row: dict[str, Any], lines: dict[int, OrderLine]
) -> tuple[Refund, list[RefundLine]]:
    user = get_user_model()
    refund = from_json(Refund, row)
    refund.order = order
    if refund.requested_by_id is not None:
        refund.requested_by = user(pk=refund.requested_by_id, email=row["requested_by_email"])
    if refund.decided_by_id is not None:
        refund.decided_by = user(pk=refund.decided_by_id, email=row["decided_by_email"])
    refund_lines = []
    for line_row in row["line_rows"] or ():
        line = from_json(RefundLine, line_row)
        line.order_line = lines[line.order_line_id]
        refund_lines.append(line)
    return refund, refund_lines
