"""Admin API for shipments: ship lines of an order, confirm a delivery. Rules in the services."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Status

from shopkeeper.accounts.access import acting_staff, requires
from shopkeeper.accounts.api_auth import GuardedRouter, api_auth
from shopkeeper.accounts.permissions import Permission
from shopkeeper.fulfilment import services
from shopkeeper.fulfilment.models import Shipment
from shopkeeper.fulfilment.rules import InvalidShipmentLines
from shopkeeper.fulfilment.schemas import ShipmentIn
from shopkeeper.fulfilment.selectors import shipment_data
from shopkeeper.idempotency.api import idempotent
from shopkeeper.orders.schemas import ShipmentOut

router = GuardedRouter(tags=["fulfilment"], auth=api_auth)


@router.post("/orders/{number}/shipments", response={201: ShipmentOut})
@requires(Permission.ORDERS_FULFIL)
@idempotent
def create_shipment(
    request: HttpRequest, number: str, payload: ShipmentIn
) -> Status[dict[str, Any]]:
    """Ship `lines` ({sku, quantity}) of a paid or authorised order, or, without `lines`,
    everything not yet shipped. Send an `Idempotency-Key` header so a retry ships once."""
    lines = None
    if payload.lines is not None:
        lines = {}
        for line in payload.lines:
            if line.sku in lines:
                raise InvalidShipmentLines(f"{line.sku} is listed twice", sku=line.sku)
            lines[line.sku] = line.quantity
    shipment = services.ship_order(
        order_number=number,
        actor=acting_staff(request),
        lines=lines,
        carrier=payload.carrier,
        tracking_number=payload.tracking_number,
    )
    return Status(201, _shown(shipment))


@router.post("/orders/{number}/shipments/{shipment_id}/deliver", response=ShipmentOut)
@requires(Permission.ORDERS_FULFIL)
def deliver_shipment(request: HttpRequest, number: str, shipment_id: int) -> dict[str, Any]:
    """Confirm the shipment delivered (again: no change)."""
    shipment = services.deliver_shipment(
        order_number=number, shipment_id=shipment_id, actor=acting_staff(request)
    )
    return _shown(shipment)


def _shown(shipment: Shipment) -> dict[str, Any]:
    lines = shipment.lines.select_related("order_line").order_by("id")
    return shipment_data(shipment, [(line, line.order_line.sku) for line in lines])
