"""Our side of reconciliation: which PaymentIntents to check, and what our books say of each."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from shopkeeper.disputes.models import Dispute
from shopkeeper.orders.lookups import get_order, needing_attention, open_attention
from shopkeeper.orders.models import Order
from shopkeeper.payments.ledger import EntryKind
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.payments.selectors import current_payment
from shopkeeper.reconciliation.facts import LedgerFacts, OurDispute, OurRefund
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import RefundStatus


def intents_here(*, since: datetime | None, order_number: str | None) -> list[str]:
    """Our PaymentIntents to check: the order's, or those created since, or all of them.

    With `since`, payments with a refund still pending are checked whatever their age: an
    in-doubt refund must be settled even when its payment is older than the window.
    """
    payments = Payment.objects.all()
    if order_number is not None:
        payments = payments.filter(order=get_order(order_number))
    ids = list(payments.filter(**_created_since(since)).values_list("intent_id", flat=True))
    if since is not None:
        pending = Refund.objects.filter(status=RefundStatus.PENDING)
        if order_number is not None:
            pending = pending.filter(order__number=order_number)
        ids += pending.values_list("payment__intent_id", flat=True).distinct()
        ids += _flagged_orders_payments(order_number)
    return list(dict.fromkeys(ids))


def _flagged_orders_payments(order_number: str | None) -> list[str]:
    """The latest payment of each order flagged for a person, whatever its age."""
    flagged = Order.objects.filter(needing_attention())
    if order_number is not None:
        flagged = flagged.filter(number=order_number)
    return [
        payment.intent_id
        for payment in (current_payment(order) for order in flagged)
        if payment is not None
    ]


def _created_since(since: datetime | None) -> dict[str, datetime]:
    return {} if since is None else {"created_at__gte": since}


def ledger_facts(intent_id: str, *, in_flight_after: datetime) -> LedgerFacts | None:
    """What our books say about one PaymentIntent; None when it is not ours.

    A pending refund without Stripe's answer last sent (never sent: last touched) after
    `in_flight_after` counts as in flight: that send may still be queued at Stripe.
    """
    payment = Payment.objects.select_related("order").filter(intent_id=intent_id).first()
    if payment is None:
        return None
    entries = list(LedgerEntry.objects.filter(payment=payment))
    totals: dict[str, int] = defaultdict(int)
    for entry in entries:
        totals[entry.kind] += entry.amount_minor
    return LedgerFacts(
        intent_id=intent_id,
        order_number=payment.order.number,
        intent_status=payment.intent_status,
        currency=payment.currency,
        authorization=totals[EntryKind.AUTHORIZATION],
        capture=totals[EntryKind.CAPTURE],
        release=totals[EntryKind.RELEASE],
        void=totals[EntryKind.VOID],
        refunds=_refunds_on_ledger(entries),
        disputes=_disputes(payment, entries),
        refund_rows=_refund_rows(payment, in_flight_after),
        flag_reason=(payment.flag_reason or "flagged") if payment.flagged else "",
        attention=_attention(payment),
    )


def _attention(payment: Payment) -> tuple[tuple[str, str, str], ...]:
    """The order's open flags, given with its latest payment only (so reported once)."""
    if current_payment(payment.order) != payment:
        return ()
    return tuple((flag.code, flag.subject, flag.detail) for flag in open_attention(payment.order))


def _refunds_on_ledger(entries: list[LedgerEntry]) -> dict[str, int]:
    """Net amount per Stripe refund: refunded, less a reversal when it failed afterwards."""
    net: dict[str, int] = defaultdict(int)
    for entry in entries:
        refund_id = entry.stripe_refund_id or entry.external_id
        if entry.kind == EntryKind.REFUND:
            net[refund_id] += entry.amount_minor
        elif entry.kind == EntryKind.REFUND_REVERSAL:
            net[refund_id] -= entry.amount_minor
    return dict(net)


def _disputes(payment: Payment, entries: list[LedgerEntry]) -> tuple[OurDispute, ...]:
    """Our dispute rows with what the ledger holds back and gives back for each."""
    held: dict[str, int] = defaultdict(int)
    released: dict[str, int] = defaultdict(int)
    for entry in entries:
        dispute_id = entry.stripe_dispute_id or entry.external_id
        if entry.kind == EntryKind.DISPUTE:
            held[dispute_id] += entry.amount_minor
        elif entry.kind == EntryKind.DISPUTE_CLOSED:
            released[dispute_id] += entry.amount_minor
    statuses = dict(
        Dispute.objects.filter(payment=payment).values_list("stripe_dispute_id", "status")
    )
    return tuple(
        OurDispute(
            id=dispute_id,
            status=statuses.get(dispute_id, ""),
            opened=held[dispute_id],
            released=released[dispute_id],
        )
        for dispute_id in dict.fromkeys([*statuses, *held, *released])
    )


def _refund_rows(payment: Payment, in_flight_after: datetime) -> tuple[OurRefund, ...]:
    return tuple(
        OurRefund(
            id=refund.pk,
            key=str(refund.key),
            status=refund.status,
            amount=refund.amount_minor,
            stripe_refund_id=refund.stripe_refund_id or "",
            in_flight=(
                refund.status == RefundStatus.PENDING
                and not refund.stripe_refund_id
                and (refund.last_sent_at or refund.updated_at) > in_flight_after
            ),
        )
        for refund in Refund.objects.filter(payment=payment).order_by("id")
    )
