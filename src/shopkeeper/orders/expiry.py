"""Unpaid orders expire: an order nobody paid within SHOPKEEPER_UNPAID_ORDER_TTL of checkout is
cancelled, its PaymentIntent cancelled at Stripe first, and its stock given back.

The steps of a staff cancel (orders.services), run by the worker under the `SYSTEM` actor:

1. under the order's lock, check it is still due (`rules.is_due_to_expire`) and claim it for a
   cancel (`orders.claims`: no staff capture or cancel runs meanwhile);
2. read each open PaymentIntent from Stripe and cancel it there, outside any transaction,
   with a key derived from the order and the intent, so a retried run cancels once. Read
   first, because Stripe would also cancel an authorised one: a customer who paid at the last
   second (`succeeded`, `requires_capture`, or Stripe refusing the cancel for that reason) has
   the payment recorded as the webhook would (`apply_intent`) and the order stays; one still
   `processing` stays until Stripe settles it. No answer (Stripe down, a timeout): nothing is
   recorded, the order stays pending and the next run retries with the same key;
3. in one transaction, re-checked under the lock: the order `cancelled` with the reason
   `expired: unpaid after 60m`, its payment `voided`, its stock returned once
   (`orders.stock`), an `order.expired` audit entry.

The worker's job for one order holds the lock `stripe:<PaymentIntent>` (stripe_events.job_lock),
so it never runs beside the processing of a webhook about the same payment.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.durations import format_duration
from shopkeeper.errors import PaymentProviderUnavailable, PaymentRequestInvalid
from shopkeeper.orders.claims import claim_order, release, release_claim, reserving
from shopkeeper.orders.locks import lock_order, lock_rows
from shopkeeper.orders.models import Order
from shopkeeper.orders.operations import Operation, OperationInProgress
from shopkeeper.orders.rules import expiry_reason, is_due_to_expire
from shopkeeper.orders.services import cancel_locked
from shopkeeper.orders.states import OrderStatus
from shopkeeper.orders.steps import PaymentProcessing, learn_why_stripe_refused
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.services import apply_intent
from shopkeeper.payments.states import UNPAID_STATUSES
from shopkeeper.payments.stripe_statuses import (
    FINISHED_INTENT_STATUSES,
    MONEY_HOLDING_INTENT_STATUSES,
    IntentStatus,
)

logger = logging.getLogger(__name__)

BATCH = 500  # orders deferred per run at most; the next run takes the rest
# PaymentIntent statuses in which nobody has paid yet: cancelling one takes nothing from anyone.
_PAYABLE = (
    IntentStatus.REQUIRES_PAYMENT_METHOD,
    IntentStatus.REQUIRES_CONFIRMATION,
    IntentStatus.REQUIRES_ACTION,
)


class Expiry(StrEnum):
    """What one run did to one order."""

    EXPIRED = "expired"  # cancelled, stock returned
    NOT_DUE = "not_due"  # paid, cancelled or too young: nothing to do
    PAID = "paid"  # Stripe says the customer paid at the last second: recorded, kept
    RETRY = "retry"  # Stripe did not answer, or the order is busy: the next run tries again


@dataclass(frozen=True, slots=True)
class DueOrder:
    number: str
    intent_id: str  # its latest PaymentIntent ("" when checkout recorded none)


def orders_due_to_expire(*, now: datetime | None = None, limit: int = BATCH) -> list[DueOrder]:
    """Open orders unpaid for SHOPKEEPER_UNPAID_ORDER_TTL, oldest first: one index range
    (`order_both_status_keyset_idx`: status, payment status, created_at)."""
    cutoff = (now or timezone.now()) - settings.SHOPKEEPER_UNPAID_ORDER_TTL
    latest_intent = (
        Payment.objects.filter(order=OuterRef("pk")).order_by("-id").values("intent_id")[:1]
    )
    rows = (
        Order.objects.filter(
            status=OrderStatus.PENDING,
            payment_status__in=[str(s) for s in UNPAID_STATUSES],
            created_at__lte=cutoff,
        )
        .order_by("created_at", "id")
        .annotate(intent_id=Subquery(latest_intent))
        .values_list("number", "intent_id")[:limit]
    )
    return [DueOrder(number, intent_id or "") for number, intent_id in rows]


def expire_unpaid_order(*, order_number: str, gateway: PaymentGateway | None = None) -> Expiry:
    """Expire the order if it is still unpaid after the TTL; what was done (see `Expiry`)."""
    ttl = settings.SHOPKEEPER_UNPAID_ORDER_TTL
    gateway = gateway or get_gateway()
    key = f"order-{order_number}-expire"
    try:
        open_intents = reserving(order_number, gateway, lambda: _reserve(order_number, key, ttl))
    except OperationInProgress:
        return Expiry.RETRY  # staff are capturing or cancelling it right now
    if open_intents is None:
        return Expiry.NOT_DUE
    cancelled: list[IntentSnapshot] = []
    unknown_at_stripe: list[str] = []
    for intent_id in open_intents:
        try:
            intent = _cancel_at_stripe(order_number, intent_id, gateway)
        except PaymentProviderUnavailable as error:
            # Unknown: the claim stays for its lease; the next run sends the same key again.
            logger.warning("Order %s not expired yet: %s", order_number, error.detail)
            return Expiry.RETRY
        except BaseException:
            release(order_number, key)
            raise
        if isinstance(intent, Expiry):  # paid at the last second, or processing
            release(order_number, key)
            return intent
        if intent is None:
            unknown_at_stripe.append(intent_id)
        else:
            cancelled.append(intent)
    return _record_expiry(order_number, key, ttl, cancelled, unknown_at_stripe)


def _reserve(order_number: str, key: str, ttl: timedelta) -> list[str] | None:
    """Claim the order for its cancel if it is still due; its open PaymentIntents (None: not
    due, e.g. paid since the run found it)."""
    with transaction.atomic():
        order = lock_order(number=order_number)
        if not _due(order, ttl):
            release_claim(order, key)  # a retry's claim, of an order paid meanwhile
            return None
        payments = lock_rows(order, Payment.objects.all())
        claim_order(order, operation=Operation.CANCEL, key=key)
        return [p.intent_id for p in payments if p.intent_status not in FINISHED_INTENT_STATUSES]


def _due(order: Order, ttl: timedelta) -> bool:
    age = timezone.now() - order.created_at
    return is_due_to_expire(order.status, order.payment_status, age=age, ttl=ttl)


def _cancel_at_stripe(
    order_number: str, intent_id: str, gateway: PaymentGateway
) -> IntentSnapshot | Expiry | None:
    """The cancelled PaymentIntent, or why the order stays: the customer paid (recorded as the
    webhook would), or the payment is processing. Stripe would also cancel an authorised one
    (voiding the customer's money), so the PaymentIntent is read first. None: Stripe does not
    know it (nobody can pay it; e.g. `seed --orders` rows), so there is nothing to cancel."""
    try:
        intent = gateway.retrieve_payment_intent(intent_id)
    except PaymentRequestInvalid as error:
        if error.extra.get("stripe_code") == "resource_missing" or (
            error.extra.get("http_status") == 404
        ):
            logger.warning("Order %s: Stripe knows no PaymentIntent %s", order_number, intent_id)
            return None
        raise
    if intent.status not in (IntentStatus.CANCELED, *_PAYABLE):
        return _paid_meanwhile(order_number, intent)
    if intent.status == IntentStatus.CANCELED:
        return intent
    try:
        return gateway.cancel_payment_intent(
            intent_id, idempotency_key=f"order-{order_number}-expire-{intent_id}"
        )
    except PaymentRequestInvalid as refusal:
        try:
            intent = learn_why_stripe_refused(intent_id, gateway, refusal)
        except PaymentProcessing:
            return Expiry.RETRY
        if intent.status == IntentStatus.CANCELED:
            return intent
        if intent.status in MONEY_HOLDING_INTENT_STATUSES:
            return _paid_meanwhile(order_number, intent)
        raise


def _paid_meanwhile(order_number: str, intent: IntentSnapshot) -> Expiry:
    """Stripe has the payment (or is processing it): record what it shows; the order stays."""
    apply_intent(intent, source="stripe")
    if intent.status in MONEY_HOLDING_INTENT_STATUSES:
        logger.info("Order %s was paid at the last second (%s)", order_number, intent.id)
        return Expiry.PAID
    return Expiry.RETRY  # processing: it expires once Stripe has settled it, if unpaid


def _record_expiry(
    order_number: str,
    key: str,
    ttl: timedelta,
    cancelled: list[IntentSnapshot],
    unknown_at_stripe: list[str],
) -> Expiry:
    """Record the expiry Stripe allowed, re-checked under the lock; the claim is released."""
    with transaction.atomic():
        order = lock_order(number=order_number)
        payments = lock_rows(order, Payment.objects.all())
        release_claim(order, key)
        if not _due(order, ttl):
            return Expiry.NOT_DUE  # paid meanwhile (a webhook): nothing is cancelled
        cancelled_ids = {intent.id for intent in cancelled} | set(unknown_at_stripe)
        if any(
            p.intent_status not in FINISHED_INTENT_STATUSES and p.intent_id not in cancelled_ids
            for p in payments
        ):
            return Expiry.RETRY  # the customer started a new attempt meanwhile
        cancel_locked(
            order,
            payments,
            expiry_reason(ttl),
            None,
            cancelled,
            action="order.expired",
            actor_label=SYSTEM,
            ttl=format_duration(ttl),
            **cast(
                dict[str, Any],
                {"unknown_at_stripe": unknown_at_stripe} if unknown_at_stripe else {},
            ),
        )
    logger.info("Order %s expired: unpaid after %s", order_number, format_duration(ttl))
    return Expiry.EXPIRED
