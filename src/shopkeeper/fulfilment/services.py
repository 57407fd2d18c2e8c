"""Shipping an order's lines and confirming delivery: one use case, one transaction each.

Each runs under the order's row lock (the lock every change to the order's money takes first),
so a shipment never races a refund's line arithmetic or a cancellation, and records its audit
entry in the same transaction. Once nothing is left to ship and the money is settled, the order
is closed (`fulfilment.closing`).
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record_for_order
from shopkeeper.errors import NotFound
from shopkeeper.fulfilment.capture import (
    authorisation_to_capture,
    capture_when_fulfilled,
    ensure_still_authorised,
)
from shopkeeper.fulfilment.closing import close_if_done
from shopkeeper.fulfilment.models import Shipment, ShipmentLine
from shopkeeper.fulfilment.rules import ensure_shippable, ensure_tracking, plan_shipment
from shopkeeper.fulfilment.selectors import line_fulfilment
from shopkeeper.fulfilment.states import ShipmentStatus, move_shipment
from shopkeeper.notifications.kinds import Kind
from shopkeeper.notifications.services import notify
from shopkeeper.orders.claims import ensure_no_claim
from shopkeeper.orders.locks import lock_order


class ShipmentNotFound(NotFound):
    code = "shipment_not_found"
    title = "This order has no shipment with this id"


@transaction.atomic
def ship_order(
    *,
    order_number: str,
    actor: Actor | None,
    lines: Mapping[str, int] | None = None,
    carrier: str = "",
    tracking_number: str = "",
    actor_label: str = "",
) -> Shipment:
    """Ship `lines` ({sku: quantity}) of a paid or authorised order, or (None) all that is
    left to ship. Refused: unpaid (409 order_not_paid), cancelled (409 order_cancelled), more
    than is left (422 quantity_exceeds_unshipped), a capture or cancel under way at Stripe.

    An order captured on fulfilment ships only while its authorisation is open (409
    authorization_lapsed); its last shipment defers the capture (fulfilment.capture)."""
    carrier, tracking_number = ensure_tracking(carrier, tracking_number)
    order = lock_order(number=order_number)
    ensure_shippable(order.status, order.payment_status)
    ensure_no_claim(order)
    on_fulfilment = authorisation_to_capture(order)
    if on_fulfilment is not None:
        ensure_still_authorised(on_fulfilment)
    lines_now = line_fulfilment(order)
    planned = plan_shipment([facts for _, facts in lines_now], lines)
    shipment = Shipment.objects.create(
        order=order, carrier=carrier, tracking_number=tracking_number, shipped_by=actor
    )
    if order.shipped_at is None:
        order.shipped_at = shipment.shipped_at
        order.save(update_fields=["shipped_at"])
    by_sku = {facts.sku: line for line, facts in lines_now}
    ShipmentLine.objects.bulk_create(
        ShipmentLine(shipment=shipment, order_line=by_sku[sku], quantity=quantity)
        for sku, quantity in planned.items()
    )
    record_for_order(
        order,
        action="order.shipped",
        actor=actor,
        actor_label=actor_label,
        after={"shipment": shipment.pk, "lines": planned},
        details={"carrier": carrier, "tracking_number": tracking_number},
    )
    notify(
        order,
        Kind.SHIPPED,
        event_key=f"shipment:{shipment.pk}",
        carrier=carrier,
        tracking_number=tracking_number,
        lines=[[by_sku[sku].name, quantity] for sku, quantity in planned.items()],
    )
    if on_fulfilment is not None:
        capture_when_fulfilled(order, on_fulfilment, line_fulfilment(order))
    close_if_done(order, actor=actor, actor_label=actor_label)
    return shipment


@transaction.atomic
def deliver_shipment(*, order_number: str, shipment_id: int, actor: Actor | None) -> Shipment:
    """Confirm a shipment delivered. Delivered already: nothing changes (a retried request)."""
    order = lock_order(number=order_number)
    shipment = Shipment.objects.select_for_update().filter(order=order, pk=shipment_id).first()
    if shipment is None:
        raise ShipmentNotFound(shipment_id=shipment_id)
    if shipment.status == ShipmentStatus.DELIVERED:
        return shipment
    shipment.status = move_shipment(shipment.status, ShipmentStatus.DELIVERED)
    shipment.delivered_at = timezone.now()
    shipment.save(update_fields=["status", "delivered_at"])
    record_for_order(
        order,
        action="order.shipment.delivered",
        actor=actor,
        after={"shipment": shipment.pk, "status": shipment.status},
    )
    return shipment
