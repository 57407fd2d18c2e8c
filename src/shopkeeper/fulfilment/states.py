"""Shipment and fulfilment statuses: pure tables, no Django, no Stripe (docs/state-machine.md).

A shipment is recorded when the parcel leaves (`shipped`) and may later be confirmed
`delivered`. An order's fulfilment status is derived from its lines, never stored by hand.
"""

from __future__ import annotations

from enum import StrEnum

from shopkeeper.transitions import StateMachine


class ShipmentStatus(StrEnum):
    SHIPPED = "shipped"
    DELIVERED = "delivered"


SHIPMENT_TRANSITIONS: dict[ShipmentStatus, frozenset[ShipmentStatus]] = {
    ShipmentStatus.SHIPPED: frozenset({ShipmentStatus.DELIVERED}),
    ShipmentStatus.DELIVERED: frozenset(),
}


class FulfillmentStatus(StrEnum):
    UNFULFILLED = "unfulfilled"
    PARTIALLY_FULFILLED = "partially_fulfilled"
    FULFILLED = "fulfilled"


_MACHINE = StateMachine(ShipmentStatus, SHIPMENT_TRANSITIONS, kind="shipment")
can_move_shipment = _MACHINE.can_move
move_shipment = _MACHINE.move
