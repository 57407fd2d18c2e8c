"""What other features need to find of an order: the row by number, its open flags.

Lower layers (payments, refunds, disputes, reconciliation) look orders up here, never in the
order detail above them (`orders_view`).
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, QuerySet

from shopkeeper.errors import NotFound
from shopkeeper.orders.models import Attention, Order


class OrderNotFound(NotFound):
    code = "order_not_found"
    title = "No order with this number"


def get_order(number: str) -> Order:
    order = Order.objects.filter(number=number).first()
    if order is None:
        raise OrderNotFound(f"No order {number!r}", number=number)
    return order


def open_attention(order: Order) -> QuerySet[Attention]:
    """The order's flags no person has resolved yet, oldest first."""
    return Attention.objects.filter(order=order, resolved_at__isnull=True).order_by("id")


def needing_attention() -> Exists:
    """For annotating or filtering orders: has an open flag."""
    return Exists(Attention.objects.filter(order=OuterRef("pk"), resolved_at__isnull=True))
