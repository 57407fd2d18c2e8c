"""Reads of shipments: what each order line has shipped, shaped for the rules and the API."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Sum

from shopkeeper.fulfilment.models import Shipment, ShipmentLine
from shopkeeper.fulfilment.rules import LineFulfilment, line_facts
from shopkeeper.orders.models import Order, OrderLine
from shopkeeper.refunds.selectors import refunded_quantities


@dataclass(frozen=True, slots=True)
class ReturnFacts:
    """What returns (a feature above this one) tell fulfilment about an order."""

    refunded_through_returns: dict[int, int] = field(default_factory=dict)  # by order line id
    open_returns: bool = False


_return_facts: list[Callable[[Order], ReturnFacts]] = []


def tell_return_facts(provider: Callable[[Order], ReturnFacts]) -> None:
    """Returns registers here (its app's ready()): units refunded through returns were shipped,
    and an open return keeps an order from closing."""
    if provider not in _return_facts:
        _return_facts.append(provider)


def return_facts(order: Order) -> ReturnFacts:
    return _return_facts[0](order) if _return_facts else ReturnFacts()


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
    counts = {
        "shipped": shipped_quantities(order),
        "refunded": refunded_quantities(order),
        "refunded_through_returns": return_facts(order).refunded_through_returns,
    }
    return [(line, line_facts(line, **counts)) for line in order.lines.order_by("id")]


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
