"""Later news about refunds: Stripe webhooks and reconciliation of refunds left pending.

A refund's news is matched to our row by Stripe's refund id, or by the `refund_key` we send as
metadata (a webhook can overtake the answer to our own request). A refund made outside
Shopkeeper (the Stripe dashboard) is recorded too, so the ledger always matches Stripe.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from django.db import transaction

from shopkeeper.orders.locks import lock_order, lock_row
from shopkeeper.payments.gateway import GatewayEvent, PaymentGateway, RefundSnapshot
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.services import apply_intent, with_intent_from_stripe
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.outcomes import apply_snapshot, audit_refund, refund_exceeds_captured
from shopkeeper.refunds.rules import REASONS, RefundStatus, refund_status_for_stripe
from shopkeeper.refunds.services import STRIPE, lock_refund

logger = logging.getLogger(__name__)


def with_refunds_from_stripe(
    event: GatewayEvent, gateway: PaymentGateway | None = None
) -> GatewayEvent:
    """A refund or charge event with Stripe's current view of every refund of its payment.

    Refund news is booked only from what Stripe returns when asked, never from the event's
    body: a signed event naming a refund Stripe does not list books nothing. Settled together
    with Stripe's current list, news overtaking other news (the success of a refund arriving
    before the failure of an earlier one that made room for it) cannot record more refunded
    than captured either. The event may overtake the payment's own news too: then the
    PaymentIntent is read as well. Call it before the event's transaction: Stripe is never
    called under locks.
    """
    if event.refund is None and event.charge is None:
        return event
    payment = _payment_of_event(event)
    if payment is None:  # not one of our payments: nothing to ask, nothing to book
        return replace(event, refunds=())
    gateway = gateway or get_gateway()
    event = with_intent_from_stripe(event, payment, gateway)
    listed = gateway.list_refunds(payment.intent_id)
    charge_id = event.charge.id if event.charge is not None else ""
    return replace(
        event, refunds=tuple(r for r in listed if not charge_id or r.charge_id in ("", charge_id))
    )


def _payment_of_event(event: GatewayEvent) -> Payment | None:
    if event.charge is not None:
        return _payment_for(event.charge.payment_intent_id, event.charge.id)
    assert event.refund is not None
    refund = _matching_refund(event.refund)
    if refund is not None:
        return refund.payment
    return _payment_for(event.refund.payment_intent_id, event.refund.charge_id)


def settle_refund_news(event: GatewayEvent) -> None:
    """Webhook handler for `refund.*`, `charge.refund.updated` and `charge.refunded`.

    The payment's news comes first when the event overtook it; then every refund in Stripe's
    list (read by `with_refunds_from_stripe`, which runs first) whose status is news to us is
    settled, money coming back (failures) before money going out, so the ledger never passes
    what was captured on the way. The event's own refund counts only as Stripe lists it; one
    Stripe does not list is not booked. Refunds made outside Shopkeeper are recorded.
    """
    if event.refunds is None or (event.refund is None and event.charge is None):
        raise ValueError(f"{event.type} carries no refund, or its refunds were not read")
    if event.intent is not None:
        apply_intent(event.intent, source="webhook")
    named = getattr(event.refund, "id", None)
    news = [
        _in_charge(listed, event)
        for listed in event.refunds
        if listed.id == named or _is_news(listed)
    ]
    if named is not None and all(listed.id != named for listed in event.refunds):
        logger.warning(
            "%s names refund %s, which Stripe does not list: not booked", event.id, named
        )
    for snapshot in sorted(news, key=_money_back_first):
        settle_refund(snapshot, source="webhook")


def _money_back_first(snapshot: RefundSnapshot) -> tuple[int, int, str]:
    back = refund_status_for_stripe(snapshot.status) in (RefundStatus.FAILED, RefundStatus.CANCELED)
    return (0 if back else 1, snapshot.created, snapshot.id)


def _is_news(snapshot: RefundSnapshot) -> bool:
    known = Refund.objects.filter(stripe_refund_id=snapshot.id).values_list("status", flat=True)
    return known.first() != refund_status_for_stripe(snapshot.status)


def _in_charge(snapshot: RefundSnapshot, event: GatewayEvent) -> RefundSnapshot:
    """A refund listed in a charge may name neither its charge nor its PaymentIntent."""
    if event.charge is None:
        return snapshot
    return replace(
        snapshot,
        payment_intent_id=snapshot.payment_intent_id or event.charge.payment_intent_id,
        charge_id=snapshot.charge_id or event.charge.id,
    )


def settle_refund(snapshot: RefundSnapshot, *, source: str) -> Refund | None:
    """Apply what Stripe says about one refund. None when it belongs to no payment here."""
    refund = _matching_refund(snapshot)
    if refund is None:
        return _record_external_refund(snapshot, source=source)
    with transaction.atomic():
        order, refund = lock_refund(refund.pk)
        apply_snapshot(
            order=order, refund=refund, snapshot=snapshot, source=source, actor_label=STRIPE
        )
    return refund


def _matching_refund(snapshot: RefundSnapshot) -> Refund | None:
    if snapshot.id:
        refund = Refund.objects.filter(stripe_refund_id=snapshot.id).first()
        if refund is not None:
            return refund
    try:
        key = uuid.UUID(str(snapshot.metadata.get("refund_key", "")))
    except ValueError:
        return None
    refund = Refund.objects.select_related("payment").filter(key=key).first()
    if refund is not None and snapshot.payment_intent_id not in ("", refund.payment.intent_id):
        logger.error("Refund %s names refund %s of another payment", snapshot.id, refund.pk)
        return None
    return refund


def _payment_for(intent_id: str, charge_id: str) -> Payment | None:
    if intent_id:
        return Payment.objects.filter(intent_id=intent_id).first()
    if charge_id:
        return Payment.objects.filter(charge_id=charge_id).first()
    return None


def _record_external_refund(snapshot: RefundSnapshot, *, source: str) -> Refund | None:
    payment = _payment_for(snapshot.payment_intent_id, snapshot.charge_id)
    if payment is None or not snapshot.id or snapshot.amount <= 0:
        logger.info("Refund %s belongs to no payment here; ignored", snapshot.id)
        return None
    if snapshot.currency and snapshot.currency != payment.currency:
        logger.error("Refund %s is in %s, not %s", snapshot.id, snapshot.currency, payment.currency)
        return None
    with transaction.atomic():
        order = lock_order(pk=payment.order_id)
        refund = lock_row(order, Refund.objects.filter(stripe_refund_id=snapshot.id))
        if refund is None and refund_exceeds_captured(order, payment, snapshot, source=source):
            return None
        if refund is None:  # not recorded by a concurrent delivery of the same news
            reason = snapshot.metadata.get("reason", "")
            refund = Refund.objects.create(
                order=order,
                payment=payment,
                status=RefundStatus.PENDING,
                amount_minor=snapshot.amount,
                currency=payment.currency,
                reason=reason if reason in REASONS else "other",
                note="Refunded outside Shopkeeper (Stripe dashboard or API)",
                source=Refund.Source.STRIPE,
                stripe_refund_id=snapshot.id,
            )
            audit_refund(order, refund, "recorded", actor_label=STRIPE, source=source)
        apply_snapshot(
            order=order, refund=refund, snapshot=snapshot, source=source, actor_label=STRIPE
        )
    return refund
