"""Refund use cases: request, approve, reject, execute at Stripe, settle later news.

Exactly once: a refund is first reserved as a row in a transaction that locks its order and
counts the open refunds against what is refundable. Only after that commits is Stripe called,
outside any lock, with an idempotency key taken from the row; the answer is recorded in a second
transaction. An unknown answer is retried with the same key and, if still unknown, the refund
stays pending for a webhook or reconciliation: it is never assumed failed and never sent twice.

Every refund status change holds the order's row lock (order first, then the refund).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from shopkeeper import failpoints
from shopkeeper.errors import DomainError, PaymentProviderUnavailable
from shopkeeper.orders.claims import ensure_no_claim
from shopkeeper.orders.models import Order
from shopkeeper.orders.selectors import get_order
from shopkeeper.payments.gateway import PaymentGateway, RefundSnapshot, get_gateway
from shopkeeper.payments.ledger import EntryKind
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import order_balance
from shopkeeper.refunds.limits import configured_limits
from shopkeeper.refunds.models import Refund, RefundLine
from shopkeeper.refunds.outcomes import apply_snapshot, audit_refund, fail_refund
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
    needs_approval,
    plan_refund,
)
from shopkeeper.refunds.selectors import order_facts, reserved_minor

logger = logging.getLogger(__name__)

STRIPE = "Stripe"


@dataclass(frozen=True, slots=True)
class StripeAnswer:
    """The end of our attempts to create a refund: a snapshot, a refusal, or nothing known."""

    attempts: int
    snapshot: RefundSnapshot | None = None
    refusal: DomainError | None = None
    unknown: str = ""


def request_refund(
    *,
    order_number: str,
    actor: Any,
    reason: str,
    amount: object = None,
    lines: Sequence[LineRequest] = (),
    include_shipping: bool = False,
    note: str = "",
    gateway: PaymentGateway | None = None,
) -> Refund:
    """Reserve a refund and, unless it needs approval, send it to Stripe.

    Any rule broken raises before anything is written or sent. A refund above the actor's limit
    is kept `awaiting_approval`; otherwise the returned refund shows Stripe's answer:
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
    )
    if refund.status == RefundStatus.PENDING:
        return execute_refund(refund_id=refund.pk, actor=actor, gateway=gateway)
    return refund


def _reserve_refund(
    *,
    order_number: str,
    actor: Any,
    reason: str,
    amount: object,
    lines: tuple[LineRequest, ...],
    include_shipping: bool,
    note: str,
) -> Refund:
    order_id = get_order(order_number).pk
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        ensure_no_claim(order)  # no capture or cancel of the order under way at Stripe
        ensure_captured(order.payment_status)
        payment = _captured_payment(order)
        plan = plan_refund(
            order_facts(order), amount=amount, lines=lines, include_shipping=include_shipping
        )
        approval = needs_approval(getattr(actor, "role", ""), plan.amount, configured_limits())
        refund = Refund.objects.create(
            order=order,
            payment=payment,
            status=RefundStatus.AWAITING_APPROVAL if approval else RefundStatus.PENDING,
            amount_minor=plan.amount.minor,
            currency=plan.amount.currency,
            reason=reason,
            note=note,
            include_shipping=plan.include_shipping,
            requested_by=actor,
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
        audit_refund(
            order,
            refund,
            "requested",
            actor=actor,
            after={"status": refund.status},
            reason=reason,
            note=note,
            include_shipping=plan.include_shipping,
            lines=[
                {"line_id": line.line_id, "quantity": line.quantity, "restock": line.restock}
                for line in plan.lines
            ],
        )
    return refund


def _captured_payment(order: Order) -> Payment:
    payments = Payment.objects.filter(order=order).order_by("-id")
    payment = payments.filter(ledger__kind=EntryKind.CAPTURE).first() or payments.first()
    if payment is None:
        raise OrderNotCaptured("This order has no payment")
    return payment


def approve_refund(
    *, refund_id: int, actor: Any, note: str = "", gateway: PaymentGateway | None = None
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


def reject_refund(*, refund_id: int, actor: Any, note: str = "") -> Refund:
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


def _ensure_decidable(refund: Refund, actor: Any) -> None:
    if refund.status != RefundStatus.AWAITING_APPROVAL:
        raise RefundNotAwaitingApproval(
            f"Refund {refund.pk} is {refund.status}", refund_status=refund.status
        )
    ensure_decider(requester_id=refund.requested_by_id, decider_id=actor.pk)


def _decide(refund: Refund, target: RefundStatus, *, actor: Any, note: str) -> None:
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
    order = Order.objects.select_for_update().get(pk=order_id)
    return order, Refund.objects.select_for_update().get(pk=refund_id)


def execute_refund(
    *, refund_id: int, actor: Any = None, gateway: PaymentGateway | None = None
) -> Refund:
    """Send a pending refund to Stripe (no transaction open) and record the answer."""
    refund = Refund.objects.select_related("payment", "order").get(pk=refund_id)
    if refund.status != RefundStatus.PENDING or refund.stripe_refund_id:
        return refund  # already answered: Stripe's own pending is settled by later news
    answer = _send(refund, gateway or get_gateway())
    failpoints.hit("refund.after_stripe")  # tests: a crash before the answer is recorded
    with transaction.atomic():
        order, refund = lock_refund(refund_id)
        refund.attempts += answer.attempts
        refund.save(update_fields=["attempts"])
        if refund.status == RefundStatus.PENDING:  # else a webhook settled it meanwhile
            _record_answer(order, refund, answer, actor=actor)
    return refund


def _record_answer(order: Order, refund: Refund, answer: StripeAnswer, *, actor: Any) -> None:
    label = "" if actor else STRIPE
    if answer.snapshot is not None:
        apply_snapshot(
            order=order,
            refund=refund,
            snapshot=answer.snapshot,
            source="shopkeeper",
            actor=actor,
            actor_label=label,
        )
    elif answer.refusal is not None:
        fail_refund(
            order=order,
            refund=refund,
            message=answer.refusal.detail,
            actor=actor,
            actor_label=label,
        )
    else:  # still unknown: pending, for a webhook or reconciliation to settle
        refund.updated_at = timezone.now()
        refund.save(update_fields=["updated_at"])
        audit_refund(
            order, refund, "outcome_unknown", actor=actor, actor_label=label, error=answer.unknown
        )


def _send(refund: Refund, gateway: PaymentGateway) -> StripeAnswer:
    """Create the refund at Stripe, retrying an unknown outcome with the same key.

    A refusal that follows an unknown outcome is not trusted as final (the first attempt may
    have gone through), so the refund stays pending for reconciliation.
    """
    delays = [0.0, *settings.SHOPKEEPER_REFUND_RETRY_DELAYS]
    unknown = ""
    for attempt, delay in enumerate(delays, start=1):
        if delay:
            time.sleep(delay)
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
            continue
        except DomainError as error:
            if unknown:
                return StripeAnswer(attempt, unknown=f"{unknown}; then: {error.detail}")
            return StripeAnswer(attempt, refusal=error)
        return StripeAnswer(attempt, snapshot=snapshot)
    return StripeAnswer(len(delays), unknown=unknown)
