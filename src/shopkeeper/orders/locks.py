"""The one lock order for changes to an order's money: the order's row first, then its rows
(payments, refunds, a dispute), each set in id order. Two moves on one order then queue on the
order instead of deadlocking, whichever row each of them touches. Call inside a transaction.
"""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Model, QuerySet

from shopkeeper.orders.lookups import OrderNotFound
from shopkeeper.orders.models import Order

M = TypeVar("M", bound=Model)


def lock_order(*, pk: int | None = None, number: str | None = None) -> Order:
    """The order's row lock: the first lock of every change to its money."""
    orders = Order.objects.select_for_update()
    order = (orders.filter(pk=pk) if pk is not None else orders.filter(number=number)).first()
    if order is None:
        raise OrderNotFound(f"No order {number or pk!r}", number=number)
    return order


def lock_rows(order: Order, rows: QuerySet[M]) -> list[M]:
    """`order`'s rows, locked in id order once `order` itself is (see `lock_order`)."""
    return list(rows.filter(order=order).select_for_update().order_by("id"))


def lock_row(order: Order, rows: QuerySet[M]) -> M | None:
    """One of `order`'s rows (or None), locked once `order` itself is."""
    return rows.filter(order=order).select_for_update().first()
