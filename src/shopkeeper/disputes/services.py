"""Recording what Stripe says about a dispute (chargeback) of one of our payments.

Whoever brings the news (a webhook, reconciliation), `record_dispute` applies it in one
transaction, with the order, payment and dispute rows locked in that order: the dispute row,
its ledger entries and the audit rows commit together. Each movement is recorded at most once
(ledger entries are keyed by the dispute id), and news older than what we know changes nothing,
so duplicated, reordered and concurrent deliveries all end in the same state.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from shopkeeper.audit.services import record_for_order
from shopkeeper.disputes.models import Dispute
from shopkeeper.disputes.rules import (
    DisputeOutcome,
    DisputeStatus,
    dispute_status,
    is_newer,
    opening_status,
    outcome_of,
)
from shopkeeper.orders.locks import lock_order, lock_row, lock_rows
from shopkeeper.orders.models import Order
from shopkeeper.orders.settling import money_moved
from shopkeeper.payments.gateway import DisputeSnapshot, GatewayEvent, PaymentGateway
from shopkeeper.payments.ledger import EntryKind
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.selectors import order_balance
from shopkeeper.payments.services import (
    STRIPE,
    add_ledger_entry,
    apply_intent,
    with_intent_from_stripe,
)

logger = logging.getLogger(__name__)

# The audit action for a dispute reaching each kind of status.
_ACTIONS = {
    DisputeStatus.WON: "order.dispute.won",
    DisputeStatus.LOST: "order.dispute.lost",
    DisputeStatus.WARNING_CLOSED: "order.dispute.closed",
    DisputeStatus.PREVENTED: "order.dispute.closed",
}


def with_intent_for_dispute(
    event: GatewayEvent, gateway: PaymentGateway | None = None
) -> GatewayEvent:
    """A dispute event that overtook its payment's own news also carries the PaymentIntent
    (see `payments.services.with_intent_from_stripe`). Call before the event's transaction."""
    payment = _payment_for(event.dispute) if event.dispute is not None else None
    if payment is None:
        return event
    return with_intent_from_stripe(event, payment, gateway or get_gateway())


def record_dispute_event(event: GatewayEvent) -> None:
    """Webhook handler for `charge.dispute.created`, `.updated` and `.closed`."""
    if event.dispute is None:
        raise ValueError(f"{event.type} carries no dispute")
    if event.intent is not None:
        apply_intent(event.intent, source="webhook")
    record_dispute(event.dispute, source="webhook")


def record_dispute(snapshot: DisputeSnapshot, *, source: str) -> Dispute | None:
    """Apply Stripe's view of one dispute. None when it disputes no payment here."""
    payment = _payment_for(snapshot)
    if payment is None or not snapshot.id:
        logger.warning("Dispute %s belongs to no payment here; ignored", snapshot.id)
        return None
    if snapshot.currency and snapshot.currency != payment.currency:
        logger.error(
            "Dispute %s is in %s, not %s", snapshot.id, snapshot.currency, payment.currency
        )
        return None
    reported = dispute_status(snapshot.status)
    with transaction.atomic():
        order = lock_order(pk=payment.order_id)
        (payment,) = lock_rows(order, Payment.objects.filter(pk=payment.pk))
        dispute = lock_row(order, Dispute.objects.filter(stripe_dispute_id=snapshot.id))
        if dispute is None:
            dispute = _open(order, payment, snapshot, source)
        if is_newer(dispute.status, reported):
            _move(order, dispute, reported, source)
    return dispute


def _payment_for(snapshot: DisputeSnapshot) -> Payment | None:
    if snapshot.payment_intent_id:
        return Payment.objects.filter(intent_id=snapshot.payment_intent_id).first()
    if snapshot.charge_id:
        return Payment.objects.filter(charge_id=snapshot.charge_id).first()
    return None


def _open(order: Order, payment: Payment, snapshot: DisputeSnapshot, source: str) -> Dispute:
    """First news of a dispute: Stripe has taken the disputed amount, so it is held back.

    The row starts at the first open status; `_move` then carries it to what was reported
    (a dispute first heard of when it closed still shows that it opened).
    """
    before = _money_state(order)
    dispute = Dispute.objects.create(
        order=order,
        payment=payment,
        stripe_dispute_id=snapshot.id,
        stripe_charge_id=snapshot.charge_id or payment.charge_id,
        status=opening_status(snapshot.status),
        outcome=DisputeOutcome.OPEN,
        amount_minor=snapshot.amount,
        currency=payment.currency,
        reason=snapshot.reason[:50],
    )
    add_ledger_entry(
        payment=payment,
        kind=EntryKind.DISPUTE,
        amount_minor=snapshot.amount,
        external_id=snapshot.id,
        source=source,
        stripe_dispute_id=snapshot.id,
        stripe_charge_id=dispute.stripe_charge_id,
    )
    if snapshot.amount > before["captured_minor"]:
        logger.error("Dispute %s is for more than order %s captured", snapshot.id, order.number)
    _audit(
        order,
        dispute,
        "order.dispute.created",
        before=before,
        source=source,
        attention="the disputed amount cannot be refunded while the dispute is open",
    )
    return dispute


def _move(order: Order, dispute: Dispute, reported: DisputeStatus, source: str) -> None:
    before = {"dispute_status": dispute.status, **_money_state(order)}
    outcome = outcome_of(reported)
    dispute.status, dispute.outcome = reported, outcome
    dispute.updated_at = timezone.now()
    if outcome != DisputeOutcome.OPEN:
        dispute.closed_at = dispute.updated_at
    dispute.save()
    details: dict[str, Any] = {}
    if outcome == DisputeOutcome.RELEASED:
        add_ledger_entry(
            payment=dispute.payment,
            kind=EntryKind.DISPUTE_CLOSED,
            amount_minor=dispute.amount_minor,
            external_id=dispute.stripe_dispute_id,
            source=source,
            stripe_dispute_id=dispute.stripe_dispute_id,
            stripe_charge_id=dispute.stripe_charge_id,
        )
    elif outcome == DisputeOutcome.LOST:
        details["attention"] = (
            f"the dispute was lost: the bank kept {dispute.money}, which stays unrefundable"
        )
        logger.warning("Order %s lost dispute %s", order.number, dispute.stripe_dispute_id)
    action = _ACTIONS.get(reported, "order.dispute.updated")
    _audit(order, dispute, action, before=before, source=source, **details)
    if outcome != DisputeOutcome.OPEN:
        money_moved(order)


def _money_state(order: Order) -> dict[str, int]:
    balance = order_balance(order)
    return {"captured_minor": balance.captured, "disputed_minor": balance.disputed}


def _audit(order: Order, dispute: Dispute, action: str, *, before: Any, **details: Any) -> None:
    record_for_order(
        order,
        action=action,
        actor_label=STRIPE,
        before=before,
        after={"dispute_status": dispute.status, **_money_state(order)},
        details={
            "dispute": dispute.stripe_dispute_id,
            "amount": str(dispute.money),
            "reason": dispute.reason,
            "outcome": dispute.outcome,
            **details,
        },
    )
