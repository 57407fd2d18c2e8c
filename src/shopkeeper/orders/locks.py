"""The one lock order for changes to an order's money: the order's row first, then its rows
(payments, refunds, a dispute), each set in id order. Two moves on one order then queue on the
order instead of deadlocking, whichever row each of them touches. Call inside a transaction.
"""

from __future__ import annotations

from functools import cache
from typing import TypeVar

from django.db import connection
from django.db.models import Model, QuerySet

from shopkeeper.orders.lookups import OrderNotFound
from shopkeeper.orders.models import Order
from shopkeeper.rows import columns, instance

M = TypeVar("M", bound=Model)


@cache
def _locking(by: str) -> str:
    table = Order._meta.db_table
    return f"SELECT {columns(Order, 'o')} FROM {table} o WHERE o.{by} = %s FOR UPDATE"


def lock_order(*, pk: int | None = None, number: str | None = None) -> Order:
    """The order's row lock: the first lock of every change to its money. Written by hand
    (shopkeeper.rows): every refund takes it twice."""
    sql, value = (_locking("id"), pk) if pk is not None else (_locking("number"), number)
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    if row is None:
        raise OrderNotFound(f"No order {number or pk!r}", number=number)
    return instance(Order, row)


def lock_rows(order: Order, rows: QuerySet[M]) -> list[M]:
    """`order`'s rows, locked in id order once `order` itself is (see `lock_order`)."""
    return list(rows.filter(order=order).select_for_update().order_by("id"))


def lock_row(order: Order, rows: QuerySet[M]) -> M | None:
    """One of `order`'s rows (or None), locked once `order` itself is."""
    return rows.filter(order=order).select_for_update().first()
