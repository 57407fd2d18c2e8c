"""Refund use cases: request, approve, reject, execute at Stripe, settle later news.

Exactly once: a refund is first reserved as a row in a transaction that locks its order and
counts the open refunds against what is refundable. Only after that commits is Stripe called,
outside any lock, with an idempotency key taken from the row; the answer is recorded in a second
transaction. Every send carries the row's one key. An unknown answer from a send that certainly
ended (Stripe answered 5xx or 429, or was never reached) is retried at once; one that may still
be in flight (a timeout, an answer lost after sending) is not: the send may be queued at Stripe,
which replays a key only once the first request finished (localstripe never). The refund stays
pending for a webhook or reconciliation, never assumed failed, and is sent again only when the
in-flight window after its last send (`last_sent_at`, a fact shared by every process) is over.

Every refund status change holds the order's row lock (order first, then the refund). A request
by someone whose role has a daily limit also locks their user row, after the order's, so that
the sum of their own refunds over 24 hours is not raced (the order's own sums are serialised by
the order's lock).

A request through the API costs about 20 statements (tests/integration/test_query_counts.py):
each transaction locks the order and then reads what it needs in one statement; the reservation
also claims the refund for sending, and the recording transaction settles the request's
Idempotency-Key.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from shopkeeper import failpoints
from shopkeeper.accounts.actors import SYSTEM, Actor
from shopkeeper.errors import DomainError, PaymentOutcomeUnknown, PaymentProviderUnavailable
from shopkeeper.idempotency.services import claimed_resource_key, settle_claim
from shopkeeper.orders.claims import ensure_no_claim
from shopkeeper.orders.locks import lock_order, lock_row
from shopkeeper.orders.models import Order
from shopkeeper.payments.gateway import PaymentGateway, RefundSnapshot
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.selectors import OrderLedger, ledger_rows_sql, order_balance
from shopkeeper.refunds.approval import DAY, approval_for, has_daily_limit, lock_staff
from shopkeeper.refunds.jobs import defer_settlement
from shopkeeper.refunds.models import Refund, RefundLine
from shopkeeper.refunds.outcomes import SENT_FIELDS, apply_snapshot, audit_refund, fail_refund
from shopkeeper.refunds.rules import (
    LineRequest,
    OrderNotCaptured,
    RefundNotAwaitingApproval,
    RefundNotFound,
    RefundStatus,
    ensure_captured,
    ensure_decider,
    ensure_reason,
    ensure_within_refundable,
    move_refund,
    plan_refund,
)
from shopkeeper.refunds.selectors import reservation_facts, reserved_minor
from shopkeeper.rows import columns, instance, width

logger = logging.getLogger(__name__)

STRIPE = "Stripe"


@dataclass(frozen=True, slots=True)
class StripeAnswer:
    """The end of our attempts to create a refund: a snapshot, a refusal, or nothing known."""

    attempts: int
    sent_at: datetime
    snapshot: RefundSnapshot | None = None
    refusal: DomainError | None = None
    unknown: str = ""


def request_refund(
    *,
    order_number: str,
    actor: Actor,
    reason: str,
    amount: object = None,
    lines: Sequence[LineRequest] = (),
    include_shipping: bool = False,
    note: str = "",
    notify_customer: bool = True,
    gateway: PaymentGateway | None = None,
) -> Refund:
    """Reserve a refund and, unless it needs approval, send it to Stripe.

    Any rule broken raises before anything is written or sent. A refund that takes the order's
    unapproved refunds above the actor's limit, or the actor's last 24 hours of them above the
    daily limit, is kept `awaiting_approval`; otherwise the returned refund shows Stripe's answer:
    succeeded, pending (Stripe's own pending, or no answer yet) or failed with a message.
    """
    note = (note or "").strip()
    ensure_reason(reason, note)
    refund = _reserve_refund(
        order_number=order_number,
        actor=actor,
        reason=reason,
        amount=amount,
        lines=tuple(lines),
        include_shipping=include_shipping,
        note=note,
        notify_customer=notify_customer,
    )
    if refund.status == RefundStatus.PENDING:  # claimed for sending by its reservation
        return _send_and_record(refund, actor=actor, gateway=gateway or get_gateway())
    return refund


def _reserve_refund(
    *,
    order_number: str,
    actor: Actor,
    reason: str,
    amount: object,
    lines: tuple[LineRequest, ...],
    include_shipping: bool,
    note: str,
    notify_customer: bool,
) -> Refund:
    """Lock the order, read what the rules need in one statement, and reserve the refund: a
    pending one is also claimed for sending now (`last_sent_at`), so no other process sends it
    while this request does."""
    with transaction.atomic():
        order = lock_order(number=order_number)
        ensure_no_claim(order)  # no capture or cancel of the order under way at Stripe
        ensure_captured(order.payment_status)
        daily = has_daily_limit(actor)
        if daily:
            lock_staff(actor)  # the daily sum below must see this person's refunds elsewhere
        known = reservation_facts(
            order, staff_id=actor.pk if daily else None, since=timezone.now() - DAY
        )
        if known.payment is None:
            raise OrderNotCaptured("This order has no payment")
        plan = plan_refund(
            known.facts, amount=amount, lines=lines, include_shipping=include_shipping
        )
        approval = approval_for(
            actor,
            plan.amount,
            order_unapproved_minor=known.order_unapproved_minor,
            day_unapproved_minor=known.staff_day_unapproved_minor,
        )
        now = timezone.now()
        refund = Refund.objects.create(
            # The request's Idempotency-Key answers from this row once it is committed.
            key=claimed_resource_key() or uuid.uuid4(),
            order=order,
            payment=known.payment,
            status=RefundStatus.AWAITING_APPROVAL if approval.needed else RefundStatus.PENDING,
            amount_minor=plan.amount.minor,
            currency=plan.amount.currency,
            reason=reason,
            note=note,
            include_shipping=plan.include_shipping,
            notify_customer=notify_customer,
            requested_by=actor,
            last_sent_at=None if approval.needed else now,
            created_at=now,
            updated_at=now,
        )
        RefundLine.objects.bulk_create(
            RefundLine(
                refund=refund,
                order_line_id=line.line_id,
                quantity=line.quantity,
                restock=line.restock,
                amount_minor=line.amount_minor,
            )
            for line in plan.lines
        )
        refund.has_restock = any(line.restock for line in plan.lines)  # type: ignore[attr-defined]
        if approval.needed:
            settle_claim(refund.key)  # nothing more happens in this request
        audit_refund(
            order,
            refund,
            "requested",
            actor=actor,
            after={"status": refund.status},
            reason=reason,
            note=note,
            include_shipping=plan.include_shipping,
            notify_customer=notify_customer,
            approval_because=[str(reason) for reason in approval.reasons],
            lines=[
                {"line_id": line.line_id, "quantity": line.quantity, "restock": line.restock}
                for line in plan.lines
            ],
        )
    return refund


def approve_refund(
    *, refund_id: int, actor: Actor, note: str = "", gateway: PaymentGateway | None = None
) -> Refund:
    """A second person lets a refund above the requester's limit go ahead; it is then sent.

    What is refundable is checked again, since the order may have changed while it waited.
    """
    with transaction.atomic():
        order, refund = lock_refund(refund_id)
        _ensure_decidable(refund, actor)
        ensure_captured(order.payment_status)
        # What is refundable besides this refund's own reservation.
        others = reserved_minor(order) - refund.amount_minor
        ensure_within_refundable(refund.money, order_balance(order).refundable(others))
        _decide(refund, RefundStatus.PENDING, actor=actor, note=note)
        audit_refund(
            order,
            refund,
            "approved",
            actor=actor,
            before={"status": RefundStatus.AWAITING_APPROVAL},
            after={"status": refund.status},
            note=refund.decision_note,
        )
    return execute_refund(refund_id=refund.pk, actor=actor, gateway=gateway)


def reject_refund(*, refund_id: int, actor: Actor, note: str = "") -> Refund:
    """A second person turns a refund down; the amount it reserved is released."""
    with transaction.atomic():
        order, refund = lock_refund(refund_id)
        _ensure_decidable(refund, actor)
        _decide(refund, RefundStatus.REJECTED, actor=actor, note=note)
        audit_refund(
            order,
            refund,
            "rejected",
            actor=actor,
            before={"status": RefundStatus.AWAITING_APPROVAL},
            after={"status": refund.status},
            note=refund.decision_note,
        )
    return refund


def _ensure_decidable(refund: Refund, actor: Actor) -> None:
    if refund.status != RefundStatus.AWAITING_APPROVAL:
        raise RefundNotAwaitingApproval(
            f"Refund {refund.pk} is {refund.status}", refund_status=refund.status
        )
    ensure_decider(requester_id=refund.requested_by_id, decider_id=actor.pk)


def _decide(refund: Refund, target: RefundStatus, *, actor: Actor, note: str) -> None:
    refund.status = move_refund(refund.status, target)
    refund.decided_by = actor
    refund.decided_at = refund.updated_at = timezone.now()
    refund.decision_note = (note or "").strip()[:1000]
    if target == RefundStatus.REJECTED:
        refund.settled_at = refund.decided_at
    refund.save()


def lock_refund(refund_id: int) -> tuple[Order, Refund]:
    """Lock the refund's order, then the refund: the fixed lock order."""
    order_id = Refund.objects.filter(pk=refund_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise RefundNotFound(f"No refund {refund_id}", refund_id=refund_id)
    order = lock_order(pk=order_id)
    refund = lock_row(order, Refund.objects.filter(pk=refund_id))
    if refund is None:
        raise RefundNotFound(f"No refund {refund_id}", refund_id=refund_id)
    return order, refund


def execute_refund(
    *,
    refund_id: int,
    actor: Actor | None = None,
    gateway: PaymentGateway | None = None,
    in_flight_after: datetime | None = None,
    settle_step: int = 0,
) -> Refund:
    """Send a pending refund to Stripe (no transaction open) and record the answer.

    Not sent when it has Stripe's answer already (Stripe's own pending is settled by later
    news), nor while an earlier send may still be in flight: last sent after `in_flight_after`
    (default: SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS ago), or claimed by another process now.
    An answer still unknown schedules step `settle_step` of the worker's retries (refunds.jobs).
    """
    if not _claim_send(refund_id, in_flight_after):
        return Refund.objects.select_related("payment", "order").get(pk=refund_id)
    refund = Refund.objects.select_related("payment", "order").get(pk=refund_id)
    return _send_and_record(
        refund, actor=actor, gateway=gateway or get_gateway(), settle_step=settle_step
    )


def _send_and_record(
    refund: Refund, *, actor: Actor | None, gateway: PaymentGateway, settle_step: int = 0
) -> Refund:
    """Send `refund` (claimed for sending, its payment and order at hand), then record the
    answer under the order's lock, reading the refund and the order's ledger in one statement."""
    answer = _send(refund, gateway)
    failpoints.hit("refund.after_stripe")  # tests: a crash before the answer is recorded
    with transaction.atomic():
        order = lock_order(pk=refund.order_id)
        refund, ledger = _locked_with_ledger(order, refund.pk)
        refund.attempts += answer.attempts
        refund.last_sent_at = answer.sent_at
        if refund.status == RefundStatus.PENDING:
            _record_answer(
                order, refund, answer, actor=actor, ledger=ledger, settle_step=settle_step
            )
        else:  # a webhook settled it meanwhile
            refund.save(update_fields=list(SENT_FIELDS))
        settle_claim(refund.key)
    return refund


@cache
def _locking_with_ledger() -> str:
    refund, payment = Refund._meta.db_table, Payment._meta.db_table
    return f"""
        SELECT {columns(Refund, "r")}, {columns(Payment, "p")},
            EXISTS(SELECT 1 FROM {RefundLine._meta.db_table} l
                   WHERE l.refund_id = r.id AND l.restock),
            {ledger_rows_sql("r.order_id")}
        FROM {refund} r JOIN {payment} p ON p.id = r.payment_id
        WHERE r.id = %s AND r.order_id = %s
        FOR UPDATE OF r"""


def _locked_with_ledger(order: Order, refund_id: int) -> tuple[Refund, OrderLedger]:
    """The refund, locked once its order is (its row only, not its payment's), with its
    payment, whether it restocks, and the order's ledger: one statement, written by hand
    (shopkeeper.rows: its ORM form cost about 3 ms of CPU to compile on every refund)."""
    with connection.cursor() as cursor:
        cursor.execute(_locking_with_ledger(), [refund_id, order.pk])
        row = cursor.fetchone()
    if row is None:
        raise RefundNotFound(f"No refund {refund_id}", refund_id=refund_id)
    split = width(Refund)
    refund = instance(Refund, row[:split])
    refund.payment = instance(Payment, row[split : split + width(Payment)])
    has_restock, rows = row[-2], row[-1]
    refund.has_restock = has_restock  # type: ignore[attr-defined]
    refund.order = order
    return refund, OrderLedger.from_json(json.loads(r) if isinstance(r, str) else r for r in rows)


def _claim_send(refund_id: int, in_flight_after: datetime | None) -> bool:
    """Mark the refund as being sent now, unless it must not be sent: one UPDATE, so of two
    processes claiming at once (a request, reconcile) only one sends."""
    if in_flight_after is None:
        window = timedelta(seconds=settings.SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS)
        in_flight_after = timezone.now() - window
    claimed = (
        Refund.objects.filter(
            pk=refund_id, status=RefundStatus.PENDING, stripe_refund_id__isnull=True
        )
        .filter(Q(last_sent_at__isnull=True) | Q(last_sent_at__lte=in_flight_after))
        .update(last_sent_at=timezone.now())
    )
    return claimed == 1


def _record_answer(
    order: Order,
    refund: Refund,
    answer: StripeAnswer,
    *,
    actor: Actor | None,
    ledger: OrderLedger | None = None,
    settle_step: int = 0,
) -> None:
    # Without a person, Shopkeeper itself sent it: the worker's retry or reconcile's resend.
    label = "" if actor else SYSTEM
    if answer.snapshot is not None:
        apply_snapshot(
            order=order,
            refund=refund,
            snapshot=answer.snapshot,
            source="shopkeeper",
            actor=actor,
            actor_label=label,
            ledger=ledger,
        )
    elif answer.refusal is not None:
        fail_refund(
            order=order,
            refund=refund,
            message=answer.refusal.detail,
            actor=actor,
            actor_label=label,
        )
    else:  # still unknown: pending, for the worker (refunds.jobs), a webhook or reconciliation
        refund.updated_at = timezone.now()
        refund.save(update_fields=[*SENT_FIELDS, "updated_at"])
        retried = defer_settlement(refund.pk, step=settle_step)
        audit_refund(
            order,
            refund,
            "outcome_unknown",
            actor=actor,
            actor_label=label,
            error=answer.unknown,
            retried_by_worker=retried,
        )


def _send(refund: Refund, gateway: PaymentGateway) -> StripeAnswer:
    """Create the refund at Stripe, retrying with the same key an unknown outcome whose send
    certainly ended; one that may still be in flight is left pending (see the module docstring).

    A refusal that follows an unknown outcome is not trusted as final (the first attempt may
    have gone through), so the refund stays pending for reconciliation.
    """
    delays = [0.0, *settings.SHOPKEEPER_REFUND_RETRY_DELAYS]
    unknown = ""
    for attempt, delay in enumerate(delays, start=1):
        if delay:
            time.sleep(delay)
        sent_at = timezone.now()
        try:
            snapshot = gateway.create_refund(
                intent_id=refund.payment.intent_id,
                amount=refund.money,
                reason=refund.reason,
                metadata={
                    "refund_id": str(refund.pk),
                    "refund_key": str(refund.key),
                    "order_number": refund.order.number,
                },
                idempotency_key=refund.idempotency_key,
            )
        except PaymentProviderUnavailable as error:
            unknown = error.detail
            logger.warning("Refund %s: Stripe outcome unknown (%s)", refund.pk, error.detail)
            if isinstance(error, PaymentOutcomeUnknown) and error.in_flight:
                return StripeAnswer(attempt, sent_at, unknown=f"{unknown} (may be in flight)")
            continue
        except DomainError as error:
            if unknown:
                return StripeAnswer(attempt, sent_at, unknown=f"{unknown}; then: {error.detail}")
            return StripeAnswer(attempt, sent_at, refusal=error)
        return StripeAnswer(attempt, sent_at, snapshot=snapshot)
    return StripeAnswer(len(delays), sent_at, unknown=unknown)
