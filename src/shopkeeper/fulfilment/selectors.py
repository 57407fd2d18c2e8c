"""Reads of shipments: what each order line has shipped, shaped for the rules and the API."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Sum

from shopkeeper.fulfilment.models import Shipment, ShipmentLine
from shopkeeper.fulfilment.rules import LineFulfilment
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.refunds.selectors import refunded_quantities


def shipped_quantities(order: Order) -> dict[int, int]:
    """Units shipped per order line id."""
    rows = (
        ShipmentLine.objects.filter(shipment__order=order)
        .values("order_line_id")
        .annotate(quantity=Sum("quantity"))
    )
    return {row["order_line_id"]: int(row["quantity"]) for row in rows}


def line_fulfilment(order: Order) -> list[tuple[OrderLine, LineFulfilment]]:
    """Each line with what the fulfilment rules need of it (read under the order's lock)."""
    shipped, refunded = shipped_quantities(order), refunded_quantities(order)
    return [
        (
            line,
            LineFulfilment(
                sku=line.sku,
                quantity=line.quantity,
                shipped=shipped.get(line.pk, 0),
                refunded=refunded.get(line.pk, 0),
            ),
        )
        for line in order.lines.order_by("id")
    ]


def has_shipments(order: Order) -> bool:
    return Shipment.objects.filter(order=order).exists()


def shipment_data(shipment: Shipment, lines: Iterable[tuple[ShipmentLine, str]]) -> dict[str, Any]:
    """A shipment as the API shows it; `lines` pairs each shipment line with its SKU."""
    return {
        "id": shipment.pk,
        "status": shipment.status,
        "lines": [
            {"line_id": line.order_line_id, "sku": sku, "quantity": line.quantity}
            for line, sku in lines
        ],
        "carrier": shipment.carrier,
        "tracking_number": shipment.tracking_number,
        "shipped_at": shipment.shipped_at,
        "delivered_at": shipment.delivered_at,
    }
