"""Closing an order once its life is over: every unit shipped or refunded, the money settled,
nothing open (fulfilment.rules.is_done). Called under the order's lock by the changes that can
finish an order (a shipment; later a refund's success, a return's end)."""

from __future__ import annotations

from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record_for_order
from shopkeeper.disputes.models import Dispute
from shopkeeper.disputes.rules import DisputeOutcome
from shopkeeper.fulfilment.rules import is_done
from shopkeeper.fulfilment.selectors import line_fulfilment, return_facts
from shopkeeper.orders.models import Order
from shopkeeper.orders.states import OrderStatus, move_order
from shopkeeper.refunds.selectors import has_refund_in_progress


def close_if_done(order: Order, *, actor: Actor | None, actor_label: str = "") -> bool:
    """Move the locked `order` to `closed` if it is done; whether it did."""
    lines = [facts for _, facts in line_fulfilment(order)]
    if not is_done(
        order.status,
        order.payment_status,
        lines,
        open_refunds=has_refund_in_progress(order),
        open_returns=return_facts(order).open_returns,
        open_disputes=Dispute.objects.filter(order=order, outcome=DisputeOutcome.OPEN).exists(),
    ):
        return False
    before = order.status
    order.status = move_order(order.status, OrderStatus.CLOSED)
    order.updated_at = timezone.now()
    order.save(update_fields=["status", "updated_at"])
    record_for_order(
        order,
        action="order.closed",
        actor=actor,
        actor_label=actor_label,
        before={"status": before},
        after={"status": order.status},
    )
    return True
