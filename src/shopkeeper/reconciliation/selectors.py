"""Our side of reconciliation: which PaymentIntents to check, and what our books say of each."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, QuerySet

from shopkeeper.disputes.models import Dispute
from shopkeeper.orders.lookups import get_order, needing_attention
from shopkeeper.orders.models import Attention, Order
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


@dataclass(frozen=True, slots=True)
class Books:
    """Our side of some PaymentIntents, read together."""

    facts: dict[str, LedgerFacts]
    # PaymentIntents whose order holds a capture or cancel claim (it may have expired).
    claimed: frozenset[str]


def ledger_facts(intent_id: str, *, in_flight_after: datetime) -> LedgerFacts | None:
    """What our books say about one PaymentIntent; None when it is not ours."""
    return books([intent_id], in_flight_after=in_flight_after).facts.get(intent_id)


def books(intent_ids: Sequence[str], *, in_flight_after: datetime) -> Books:
    """What our books say about each of `intent_ids` that is ours, in six queries whatever
    their number (keep it to a few hundred: each is a query parameter).

    A pending refund without Stripe's answer last sent (never sent: last touched) after
    `in_flight_after` counts as in flight: that send may still be queued at Stripe.
    """
    if not intent_ids:
        return Books({}, frozenset())
    payments = list(
        Payment.objects.select_related("order").filter(intent_id__in=intent_ids).order_by()
    )
    ids = [payment.pk for payment in payments]
    entries = _grouped(LedgerEntry.objects.filter(payment_id__in=ids).order_by("id"))
    disputes = _grouped(Dispute.objects.filter(payment_id__in=ids).order_by("id"))
    refunds = _grouped(Refund.objects.filter(payment_id__in=ids).order_by("id"))
    orders = {payment.order_id for payment in payments}
    latest = set(
        Payment.objects.filter(order_id__in=orders)
        .values("order_id")
        .annotate(latest=Max("id"))
        .values_list("latest", flat=True)
    )
    flags: dict[int, list[Attention]] = defaultdict(list)
    for flag in Attention.objects.filter(order_id__in=orders, resolved_at__isnull=True):
        flags[flag.order_id].append(flag)
    facts = {
        payment.intent_id: _facts(
            payment,
            entries.get(payment.pk, []),
            disputes.get(payment.pk, []),
            refunds.get(payment.pk, []),
            flags.get(payment.order_id, []) if payment.pk in latest else [],
            in_flight_after,
        )
        for payment in payments
    }
    claimed = frozenset(p.intent_id for p in payments if p.order.operation_started_at is not None)
    return Books(facts, claimed)


def _grouped(rows: QuerySet[Any]) -> dict[int, list[Any]]:
    """Rows by their payment's id, in the queryset's order."""
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.payment_id].append(row)
    return grouped


def _facts(
    payment: Payment,
    entries: list[LedgerEntry],
    disputes: list[Dispute],
    refunds: list[Refund],
    attention: list[Attention],
    in_flight_after: datetime,
) -> LedgerFacts:
    totals: dict[str, int] = defaultdict(int)
    for entry in entries:
        totals[entry.kind] += entry.amount_minor
    return LedgerFacts(
        intent_id=payment.intent_id,
        order_number=payment.order.number,
        intent_status=payment.intent_status,
        currency=payment.currency,
        authorization=totals[EntryKind.AUTHORIZATION],
        capture=totals[EntryKind.CAPTURE],
        release=totals[EntryKind.RELEASE],
        void=totals[EntryKind.VOID],
        refunds=_refunds_on_ledger(entries),
        disputes=_disputes(disputes, entries),
        refund_rows=tuple(_refund_row(refund, in_flight_after) for refund in refunds),
        flag_reason=(payment.flag_reason or "flagged") if payment.flagged else "",
        # The order's open flags, given with its latest payment only (so reported once).
        attention=tuple((flag.code, flag.subject, flag.detail) for flag in attention),
    )


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


def _disputes(rows: list[Dispute], entries: list[LedgerEntry]) -> tuple[OurDispute, ...]:
    """Our dispute rows with what the ledger holds back and gives back for each."""
    held: dict[str, int] = defaultdict(int)
    released: dict[str, int] = defaultdict(int)
    for entry in entries:
        dispute_id = entry.stripe_dispute_id or entry.external_id
        if entry.kind == EntryKind.DISPUTE:
            held[dispute_id] += entry.amount_minor
        elif entry.kind == EntryKind.DISPUTE_CLOSED:
            released[dispute_id] += entry.amount_minor
    statuses = {row.stripe_dispute_id: row.status for row in rows}
    return tuple(
        OurDispute(
            id=dispute_id,
            status=statuses.get(dispute_id, ""),
            opened=held[dispute_id],
            released=released[dispute_id],
        )
        for dispute_id in dict.fromkeys([*statuses, *held, *released])
    )


def _refund_row(refund: Refund, in_flight_after: datetime) -> OurRefund:
    return OurRefund(
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
