"""Closing an order once its life is over: something shipped, every unit shipped or refunded,
the money settled, nothing open (fulfilment.rules.is_done). Called under the order's lock by
whatever change comes last: a shipment, a return's end, a refund's new status (refunds.settled),
a capture, Stripe's news of a payment or a dispute's end (orders.settling)."""

from __future__ import annotations

from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record_for_order
from shopkeeper.disputes.models import Dispute
from shopkeeper.disputes.rules import DisputeOutcome
from shopkeeper.fulfilment.rules import is_done, may_close
from shopkeeper.fulfilment.selectors import line_fulfilment, return_facts
from shopkeeper.orders.models import Order
from shopkeeper.orders.states import OrderStatus, move_order
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.selectors import has_refund_in_progress


def close_if_done(order: Order, *, actor: Actor | None, actor_label: str = "") -> bool:
    """Move the locked `order` to `closed` if it is done; whether it did."""
    if order.shipped_at is None or not may_close(order.status, order.payment_status):
        return False  # the locked row says so: no statement spent
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


def close_after_money_moved(order: Order) -> None:
    """orders.settling's listener: the money of the locked `order` changed outside fulfilment."""
    close_if_done(order, actor=None, actor_label="Stripe")


def close_after_refund(order: Order, refund: Refund) -> None:
    """refunds.settled's listener: a refund of the locked `order` moved to a new status."""
    close_if_done(order, actor=None, actor_label="Stripe")
