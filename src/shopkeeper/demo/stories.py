"""What happens to a paid demo order after checkout, through the use cases staff and customers
use: shipped in part or in full, delivered, a return asked for, received and refunded, a note.

Each step looks first whether the order has it already, so seeding again changes nothing and a
seed cut short (Stripe unreachable) finishes the story next time.
"""

from __future__ import annotations

from dataclasses import dataclass

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.models import AuditEntry
from shopkeeper.fulfilment.services import deliver_shipment, ship_order
from shopkeeper.fulfilment.states import ShipmentStatus
from shopkeeper.orders.models import Order
from shopkeeper.orders.notes import add_note
from shopkeeper.returns.models import Return
from shopkeeper.returns.rules import ReceivedLine, ReturnLineRequest
from shopkeeper.returns.services import receive_return, refund_return, request_return
from shopkeeper.returns.states import ReturnSource, ReturnStatus

DEMO_CARRIER = "DHL"


@dataclass(frozen=True, slots=True)
class Story:
    # Units to ship, {sku: quantity} as pairs; `ship_all` ships whatever is left instead.
    ship: tuple[tuple[str, int], ...] = ()
    ship_all: bool = False
    deliver: bool = False
    # (sku, quantity, reason) the customer asks to send back, from the order's page.
    customer_return: tuple[str, int, str] | None = None
    # Staff receive that return (restocked) and refund it.
    refund_return: bool = False
    note: str = ""


NO_STORY = Story()  # placed (and paid or not), nothing after


def tell(order: Order, story: Story, *, staff: Actor) -> list[str]:
    """Take `order` through the steps of `story` it has not had yet; what was done now."""
    done: list[str] = []
    number = order.number
    if (story.ship or story.ship_all) and not order.shipments.exists():
        ship_order(
            order_number=number,
            actor=staff,
            lines=None if story.ship_all else dict(story.ship),
            carrier=DEMO_CARRIER,
            tracking_number=f"DEMO{order.pk:06d}",
        )
        done.append("shipped in full" if story.ship_all else "shipped in part")
    if story.deliver:
        for shipment in order.shipments.filter(status=ShipmentStatus.SHIPPED).order_by("id"):
            deliver_shipment(order_number=number, shipment_id=shipment.pk, actor=staff)
            done.append(f"shipment {shipment.pk} delivered")
    if story.customer_return is not None:
        done += _return(order, story.customer_return, refund=story.refund_return, staff=staff)
    if story.note and not _has_note(order):
        add_note(order_number=number, text=story.note, actor=staff)
        done.append("staff note added")
    return done


def _return(order: Order, asked: tuple[str, int, str], *, refund: bool, staff: Actor) -> list[str]:
    sku, quantity, reason = asked
    done: list[str] = []
    returned = Return.objects.filter(order=order).order_by("id").first()
    if returned is None:
        returned = request_return(
            order_number=order.number,
            lines=[ReturnLineRequest(sku=sku, quantity=quantity, reason=reason)],
            note="Sent by the demo customer from the order's page.",
            actor=None,
            actor_label="Customer",
            source=ReturnSource.CUSTOMER,
        )
        done.append(f"return {returned.pk} requested by the customer")
    if not refund:
        return done
    if returned.status == ReturnStatus.REQUESTED:
        received = [ReceivedLine(sku=sku, quantity=quantity, restock=True)]
        returned = receive_return(return_id=returned.pk, lines=received, actor=staff)
        done.append(f"return {returned.pk} received and restocked")
    if returned.status == ReturnStatus.RECEIVED and returned.refund_id is None:
        made = refund_return(return_id=returned.pk, actor=staff)
        done.append(f"return {returned.pk} refunded ({made.status})")
    return done


def _has_note(order: Order) -> bool:
    return AuditEntry.objects.filter(
        target_type="order", target_id=order.number, action="order.note"
    ).exists()
