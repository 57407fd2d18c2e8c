"""Giving an order's reserved units back to the catalog: on cancellation, on an abandoned
checkout, and for a refund's restocked lines. A line never gives back more than it took
(`restocked_quantity`), so a unit is returned once whichever of them comes first.
Call inside the order's transaction, with the order locked.
"""

from __future__ import annotations

from django.db.models import F

from shopkeeper.catalog.services import return_stock, return_stock_of
from shopkeeper.orders.locks import lock_rows
from shopkeeper.orders.models import Order, OrderLine


def restock_line(line: OrderLine, quantity: int) -> int:
    """Give back up to `quantity` units of the line not given back yet; the units returned."""
    quantity = min(quantity, line.quantity - line.restocked_quantity)
    if quantity <= 0:
        return 0
    if line.product_id is not None:
        return_stock(line.product_id, quantity)
    line.restocked_quantity += quantity
    line.save(update_fields=["restocked_quantity"])
    return quantity


def restock_order(order: Order) -> dict[str, int]:
    """Give back every unit of the order not given back yet; the units returned, by SKU.

    However many lines: one lock of the lines, one of their products (in id order, the order
    checkout takes them in), one UPDATE of each table.
    """
    lines = lock_rows(order, OrderLine.objects.all())
    owed = {line: line.quantity - line.restocked_quantity for line in lines}
    owed = {line: units for line, units in owed.items() if units > 0}
    if not owed:
        return {}
    by_product: dict[int, int] = {}
    returned: dict[str, int] = {}
    for line, units in owed.items():
        if line.product_id is not None:
            by_product[line.product_id] = by_product.get(line.product_id, 0) + units
        returned[line.sku] = returned.get(line.sku, 0) + units
        line.restocked_quantity = line.quantity
    return_stock_of(by_product)
    OrderLine.objects.filter(pk__in=[line.pk for line in owed]).update(
        restocked_quantity=F("quantity")
    )
    return returned
