"""The order's claim on Stripe for a capture or a cancel (the rule: `orders.operations`).

`claim_order` runs in the reserve transaction, under the order's lock, after the request is
validated; `release_claim` in the transaction that records Stripe's answer, or right after a
refusal. An unknown outcome keeps the claim: the same request may retry with its key, while any
other waits out the lease (`SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS`, longer than any request
runs). After it `recover_expired_claim` asks Stripe what happened to the order's PaymentIntents,
records that through `apply_intent`, and releases the claim, with an audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from shopkeeper.audit.services import record_for_order
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.lookups import OrderNotFound
from shopkeeper.orders.models import Order
from shopkeeper.orders.operations import (
    Claim,
    InFlight,
    Operation,
    OperationInProgress,
    claim,
    ensure_none_in_flight,
)
from shopkeeper.payments.gateway import PaymentGateway
from shopkeeper.payments.models import Payment
from shopkeeper.payments.services import apply_intent
from shopkeeper.payments.stripe_statuses import FINISHED_INTENT_STATUSES

T = TypeVar("T")


class ClaimExpired(Exception):
    """Internal: another operation's claim outlived its lease; Stripe must be asked first."""


def lease() -> timedelta:
    return timedelta(seconds=settings.SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS)


def in_flight(order: Order) -> InFlight | None:
    if not order.operation or order.operation_started_at is None:
        return None
    return InFlight(order.operation, order.operation_key, order.operation_started_at)


def claim_order(order: Order, *, operation: Operation, key: str) -> None:
    """Claim the locked `order` for `operation` with idempotency `key`, or refuse (409)."""
    if claim(in_flight(order), key=key, now=timezone.now(), lease=lease()) == Claim.EXPIRED:
        raise ClaimExpired(order.number)
    order.operation, order.operation_key = str(operation), key
    order.operation_started_at = timezone.now()
    order.save(update_fields=["operation", "operation_key", "operation_started_at"])


def ensure_no_claim(order: Order) -> None:
    """For a refund of the locked `order`: no capture or cancel may be under way."""
    ensure_none_in_flight(in_flight(order), now=timezone.now(), lease=lease())


def release_claim(order: Order, key: str) -> None:
    """Release the locked `order`'s claim if it is still `key`'s."""
    if order.operation and order.operation_key == key:
        order.operation, order.operation_key, order.operation_started_at = "", "", None
        order.save(update_fields=["operation", "operation_key", "operation_started_at"])


def release(order_number: str, key: str) -> None:
    """Stripe refused the operation (its answer is known): release the claim now."""
    with transaction.atomic():
        try:
            order = lock_order(number=order_number)
        except OrderNotFound:
            return
        release_claim(order, key)


def reserving(order_number: str, gateway: PaymentGateway, reserve: Callable[[], T]) -> T:
    """Run `reserve`; if it meets an expired claim, settle that claim from Stripe and retry."""
    try:
        return reserve()
    except ClaimExpired:
        recover_expired_claim(order_number, gateway)
    try:
        return reserve()
    except ClaimExpired as again:
        raise OperationInProgress() from again


def recover_expired_claim(order_number: str, gateway: PaymentGateway | None) -> None:
    """Ask Stripe about the order's open PaymentIntents (no locks held), record what they show,
    then release the claim if it is still the same, expired one. Without `gateway` (reconcile,
    which has just recorded what Stripe shows) Stripe is not asked again."""
    order = Order.objects.filter(number=order_number).first()
    stale = in_flight(order) if order is not None else None
    if order is None or stale is None:
        return
    if timezone.now() - stale.started_at < lease():
        return
    open_intents = Payment.objects.filter(order=order).exclude(
        intent_status__in=FINISHED_INTENT_STATUSES
    )
    if gateway is not None:
        for intent_id in open_intents.values_list("intent_id", flat=True):
            apply_intent(gateway.retrieve_payment_intent(intent_id), source="stripe")
    with transaction.atomic():
        order = lock_order(pk=order.pk)
        if in_flight(order) != stale:
            return
        release_claim(order, stale.key)
        record_for_order(
            order,
            action="order.operation_expired",
            actor_label="Shopkeeper",
            details={
                "operation": stale.operation,
                "idempotency_key": stale.key,
                "started_at": stale.started_at.isoformat(),
                "note": "no answer was recorded within the lease; Stripe was asked instead",
            },
        )
