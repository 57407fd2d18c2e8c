"""Giving an order's reserved units back to the catalog: on cancellation, on an abandoned
checkout, and for a refund's restocked lines. A line never gives back more than it took
(`restocked_quantity`), so a unit is returned once whichever of them comes first.
Call inside the order's transaction, with the order locked.
"""

from __future__ import annotations

from shopkeeper.catalog.services import return_stock
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
    """Give back every unit of the order not given back yet; the units returned, by SKU."""
    returned: dict[str, int] = {}
    for line in lock_rows(order, OrderLine.objects.all()):
        if units := restock_line(line, line.quantity):
            returned[line.sku] = returned.get(line.sku, 0) + units
    return returned
