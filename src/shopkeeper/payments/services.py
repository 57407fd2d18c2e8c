"""Learning what Stripe did with a payment, whoever tells us: webhook, return page, or a tool.

`apply_intent` is the one code path. It records every movement the PaymentIntent proves as a
ledger row (each at most once), derives the payment status from the ledger, and only ever moves
forward: a stale or replayed snapshot changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime

from django.db import transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from shopkeeper.audit.services import record_for_order
from shopkeeper.errors import NotFound
from shopkeeper.inserts import insert_unless_conflict
from shopkeeper.notifications.kinds import Kind
from shopkeeper.notifications.services import money_details, notify
from shopkeeper.orders.attention import (
    CAPTURE_AFTER_VOID,
    PAID_AFTER_CANCEL,
    STRIPE_CONTRADICTS,
    VOID_AFTER_CAPTURE,
    flag_order,
)
from shopkeeper.orders.locks import lock_order, lock_rows
from shopkeeper.orders.models import Order
from shopkeeper.orders.settling import money_moved
from shopkeeper.orders.states import OrderStatus, can_move_order
from shopkeeper.payments.gateway import GatewayEvent, IntentSnapshot, PaymentGateway
from shopkeeper.payments.ledger import EntryKind, contradiction, ensure_possible, payment_status_for
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.selectors import (
    OrderLedger,
    order_balance,
    order_ledger,
    payment_balance,
)
from shopkeeper.payments.states import PaymentStatus, can_move_payment
from shopkeeper.payments.stripe_statuses import (
    FINISHED_INTENT_STATUSES,
    MONEY_HOLDING_INTENT_STATUSES,
    IntentStatus,
)

logger = logging.getLogger(__name__)

STRIPE = "Stripe"


class PaymentNotFound(NotFound):
    code = "payment_not_found"
    title = "No payment matches this PaymentIntent"


def record_payment_intent(
    *, order: Order, intent: IntentSnapshot, capture_on_fulfillment: bool = False
) -> Payment:
    with transaction.atomic():
        payment, created = Payment.objects.get_or_create(
            intent_id=intent.id,
            defaults={
                "order": order,
                "client_secret": intent.client_secret,
                "capture_method": intent.capture_method,
                "capture_on_fulfillment": capture_on_fulfillment,
                "amount_minor": intent.amount,
                "currency": intent.currency,
                "intent_status": intent.status,
            },
        )
        if created:
            record_for_order(
                order,
                action="payment.started",
                actor_label="Shopkeeper",
                details={"payment_intent": intent.id, "capture_method": intent.capture_method},
            )
    return payment


def add_ledger_entry(
    *,
    payment: Payment,
    kind: EntryKind,
    amount_minor: int,
    external_id: str,
    source: str,
    **stripe_ids: str,
) -> LedgerEntry | None:
    """Append a movement once; None when this movement is already on the ledger.

    Raises ImpossibleMovement for a movement the ledger cannot hold (a capture after a void, a
    void after a capture, refunds above captured): callers check first and flag the order.
    """
    return append_to_ledger(
        order_ledger(payment.order_id),
        payment=payment,
        kind=kind,
        amount_minor=amount_minor,
        external_id=external_id,
        source=source,
        **stripe_ids,
    )


def append_to_ledger(
    ledger: OrderLedger,
    *,
    payment: Payment,
    kind: EntryKind,
    amount_minor: int,
    external_id: str,
    source: str,
    **stripe_ids: str,
) -> LedgerEntry | None:
    """`add_ledger_entry` on the order's ledger as the caller's transaction read it under the
    order's lock; the new row is added to `ledger`. One statement."""
    if amount_minor <= 0 or ledger.has(kind, external_id):
        return None
    ensure_possible(ledger.payment_balance(payment.pk), kind, amount_minor)
    entry = LedgerEntry(
        order_id=payment.order_id,
        payment=payment,
        kind=kind,
        amount_minor=amount_minor,
        currency=payment.currency,
        external_id=external_id,
        stripe_payment_intent_id=payment.intent_id,
        source=source,
        **stripe_ids,
    )
    if not insert_unless_conflict(entry, "kind", "external_id"):  # ledger_movement_once
        return None  # recorded concurrently by another delivery of the same news
    ledger.add(entry)
    return entry


# How far a PaymentIntent has come. Stripe never moves one backwards (a declined attempt and a
# retry both sit at the first step), so a snapshot ranking below the one we last applied, or a
# different final status, is older news: a late or reordered webhook. It changes nothing.
INTENT_PROGRESS: dict[str, int] = {
    IntentStatus.REQUIRES_PAYMENT_METHOD: 0,
    IntentStatus.REQUIRES_CONFIRMATION: 0,
    IntentStatus.REQUIRES_ACTION: 0,
    IntentStatus.PROCESSING: 0,
    IntentStatus.REQUIRES_CAPTURE: 1,
    IntentStatus.SUCCEEDED: 2,
    IntentStatus.CANCELED: 2,
}


def is_stale(payment: Payment, intent: IntentSnapshot) -> bool:
    seen, now = payment.intent_status, intent.status
    if seen in FINISHED_INTENT_STATUSES:
        return now != seen
    return INTENT_PROGRESS.get(now, 0) < INTENT_PROGRESS.get(seen, 0)


def _mismatch(order: Order, intent: IntentSnapshot) -> str:
    if intent.currency != order.currency:
        return f"currency {intent.currency} does not match the order's {order.currency}"
    if intent.amount != order.grand_total_minor:
        return f"amount {intent.amount} does not match the order total {order.grand_total_minor}"
    if intent.order_number and intent.order_number != order.number:
        return f"PaymentIntent belongs to order {intent.order_number}, not {order.number}"
    return ""


def _record_movements(payment: Payment, intent: IntentSnapshot, source: str) -> bool:
    """Ledger rows for what the snapshot proves, each under an id that makes it happen once.

    External ids are `{pi}:authorization`, `{pi}:capture`, `{pi}:release` and `{pi}:void`:
    any other code recording these movements must use the same ids. The release is what the
    authorisation held beyond the capture actually recorded, so a later, different view of
    the captured amount cannot add a second, wrong release. True when this call recorded the
    authorisation, i.e. money was first taken now.
    """
    authorization = None
    pi = intent.id
    charge = {"stripe_charge_id": intent.charge_id} if intent.charge_id else {}
    if intent.status in MONEY_HOLDING_INTENT_STATUSES:
        authorized = (
            intent.amount if intent.status == IntentStatus.SUCCEEDED else intent.amount_capturable
        )
        authorization = add_ledger_entry(
            payment=payment,
            kind=EntryKind.AUTHORIZATION,
            amount_minor=authorized or intent.amount,
            external_id=f"{pi}:authorization",
            source=source,
            **charge,
        )
        if authorization is not None:
            _note_authorised_at(payment, intent)
    if intent.status == IntentStatus.SUCCEEDED:
        add_ledger_entry(
            payment=payment,
            kind=EntryKind.CAPTURE,
            amount_minor=min(intent.amount_received or intent.amount, intent.amount),
            external_id=f"{pi}:capture",
            source=source,
            **charge,
        )
        balance = payment_balance(payment)
        add_ledger_entry(
            payment=payment,
            kind=EntryKind.RELEASE,
            amount_minor=balance.authorized - balance.captured - balance.released,
            external_id=f"{pi}:release",
            source=source,
            **charge,
        )
    if intent.status == IntentStatus.CANCELED:
        add_ledger_entry(
            payment=payment,
            kind=EntryKind.VOID,
            amount_minor=payment_balance(payment).capturable,
            external_id=f"{pi}:void",
            source=source,
        )
    return authorization is not None


def _note_authorised_at(payment: Payment, intent: IntentSnapshot) -> None:
    """When the card was authorised: Stripe's charge time when the snapshot carries it (a
    webhook may arrive days late), else now, when we learn it; never in the future."""
    now = timezone.now()
    charged = (
        datetime.fromtimestamp(intent.charge_created, tz=UTC) if intent.charge_created else now
    )
    payment.authorized_at = min(charged, now)
    Payment.objects.filter(pk=payment.pk).update(authorized_at=payment.authorized_at)


def _target_status(order: Order, intent: IntentSnapshot, *, current: bool) -> PaymentStatus:
    """What the ledger proves; else, for the order's current attempt only, failed or voided.

    An order may have had earlier PaymentIntents (a new one per retry where the old one cannot
    be confirmed again): their failures and cancellations say nothing about the order.
    """
    derived = payment_status_for(order_balance(order), order.payment_status)
    if derived != order.payment_status or not current:
        return derived
    if intent.status == IntentStatus.CANCELED and order.payment_status in (
        PaymentStatus.PENDING,
        PaymentStatus.FAILED,
    ):
        return PaymentStatus.VOIDED
    if intent.status == IntentStatus.REQUIRES_PAYMENT_METHOD and intent.last_error:
        return PaymentStatus.FAILED
    return PaymentStatus(order.payment_status)


def apply_intent(intent: IntentSnapshot, *, source: str) -> Order | None:
    """Bring our records in line with a PaymentIntent snapshot. Returns the order, if known.

    Stale snapshots and flagged payments change nothing; a snapshot whose amount, currency or
    order does not match flags the payment instead of accepting it.
    """
    payment_ref = (
        Payment.objects.filter(intent_id=intent.id).values_list("order_id", flat=True).first()
    )
    if payment_ref is None:
        logger.info("PaymentIntent %s belongs to no order here; ignored", intent.id)
        return None
    with transaction.atomic():
        order = lock_order(pk=payment_ref)
        (payment,) = lock_rows(order, Payment.objects.filter(intent_id=intent.id))
        if payment.flagged:
            return order
        if _contradicts_us(order, payment, intent, source):
            return order
        if is_stale(payment, intent):
            return order
        mismatch = _mismatch(order, intent)
        if mismatch:
            _flag(order, payment, intent, mismatch)
            return order
        refresh_payment(payment, intent)
        if _record_movements(payment, intent, source):
            _note_second_payment(order, payment, source)
        current = not Payment.objects.filter(order=order, id__gt=payment.pk).exists()
        _advance_order(order, intent, source, current=current)
        money_moved(order)
    return order


def _contradicts_us(order: Order, payment: Payment, intent: IntentSnapshot, source: str) -> bool:
    """Stripe reports an end our books rule out: flag the order for a person, record nothing.

    An authorisation is captured or voided, never both, and Stripe never leaves a final status:
    a snapshot that says otherwise (an emulator that accepted both calls, a capture made in the
    Dashboard while we voided) is not older news but a contradiction.
    """
    balance = payment_balance(payment)
    code = ""
    if intent.status == IntentStatus.SUCCEEDED and contradiction(balance, EntryKind.CAPTURE):
        code = CAPTURE_AFTER_VOID
    elif intent.status == IntentStatus.CANCELED and contradiction(balance, EntryKind.VOID):
        code = VOID_AFTER_CAPTURE
    elif {payment.intent_status, intent.status} <= FINISHED_INTENT_STATUSES and (
        payment.intent_status != intent.status
    ):
        code = STRIPE_CONTRADICTS
    if not code:
        return False
    flag_order(
        order,
        code=code,
        subject=intent.id,
        detail=f"Stripe reports PaymentIntent {intent.id} {intent.status}, but our books have it "
        f"{payment.intent_status} (captured {balance.captured}, voided {balance.voided})",
        actor_label=STRIPE,
        source=source,
    )
    return True


def _note_second_payment(order: Order, payment: Payment, source: str) -> None:
    """Money taken by a second PaymentIntent of one order is recorded, and staff are told."""
    others = (
        LedgerEntry.objects.filter(order=order, kind=EntryKind.AUTHORIZATION)
        .exclude(payment=payment)
        .values_list("stripe_payment_intent_id", flat=True)
    )
    if not others:
        return
    record_for_order(
        order,
        action="payment.duplicate",
        actor_label=STRIPE,
        details={
            "payment_intent": payment.intent_id,
            "earlier_payment_intents": sorted(others),
            "source": source,
            "attention": "this order was paid more than once; void or refund one payment",
        },
    )
    logger.error("Order %s paid more than once (%s)", order.number, payment.intent_id)


def _advance_order(order: Order, intent: IntentSnapshot, source: str, *, current: bool) -> None:
    before = {"status": order.status, "payment_status": order.payment_status}
    target = _target_status(order, intent, current=current)
    if target == order.payment_status or not can_move_payment(order.payment_status, target):
        return  # nothing new, or older news than what we already know
    order.payment_status = target
    money_held = target in (PaymentStatus.AUTHORIZED, PaymentStatus.PAID)
    if money_held and can_move_order(order.status, OrderStatus.PROCESSING):
        order.status = OrderStatus.PROCESSING
    order.updated_at = timezone.now()
    order.save(update_fields=["status", "payment_status", "updated_at"])
    details = {"payment_intent": intent.id, "source": source, "error": intent.last_error}
    if money_held and order.status == OrderStatus.CANCELLED:
        # The customer paid an order we had already cancelled (or that expired): the money is
        # real and on the ledger. The order is flagged, and the worker gives the money back
        # (orders.late_payments: void or refund, once).
        details["attention"] = "payment received for a cancelled order; it is given back"
        flag_order(
            order,
            code=PAID_AFTER_CANCEL,
            subject=intent.id,
            detail=f"PaymentIntent {intent.id} holds money ({target}) for this cancelled order "
            f"({order.cancel_reason or 'cancelled'}); Shopkeeper voids or refunds it",
            actor_label=STRIPE,
            source=source,
        )
        logger.error("Order %s was cancelled but its payment is %s", order.number, target)
    record_for_order(
        order,
        action=f"payment.{target}",
        actor_label=STRIPE,
        before=before,
        after={"status": order.status, "payment_status": order.payment_status},
        details=details,
    )
    if (
        money_held
        and order.status != OrderStatus.CANCELLED
        and before["payment_status"]
        not in (
            PaymentStatus.AUTHORIZED,
            PaymentStatus.PAID,
        )
    ):
        notify(
            order,
            Kind.PAYMENT_RECEIVED,
            event_key=intent.id,
            authorized_only=target == PaymentStatus.AUTHORIZED,
            **money_details(order.grand_total),
        )


def sync_from_stripe(
    intent_id: str,
    *,
    client_secret: str | None = None,
    gateway: PaymentGateway | None = None,
    source: str = "return_page",
) -> Order:
    """Ask Stripe for the PaymentIntent and apply it: the return page's path to `apply_intent`.

    With `client_secret` (what the browser brings back from Stripe), it must be the secret we
    stored for this PaymentIntent; otherwise the payment is unknown to the caller, so nobody can
    probe other customers' orders. The secret is checked before Stripe is called.
    """
    payment = Payment.objects.filter(intent_id=intent_id).first()
    if payment is None or (
        client_secret is not None
        and not constant_time_compare(client_secret, payment.client_secret)
    ):
        raise PaymentNotFound(detail=None)
    intent = (gateway or get_gateway()).retrieve_payment_intent(intent_id)
    order = apply_intent(intent, source=source)
    return order if order is not None else payment.order


def with_intent_from_stripe(
    event: GatewayEvent, payment: Payment, gateway: PaymentGateway
) -> GatewayEvent:
    """`event` with its payment's PaymentIntent as Stripe has it now, when we have not seen it
    take the money yet: news of money going back (a refund, a dispute) overtook the payment's
    own webhook. Its handler applies the PaymentIntent first, so what went back never exceeds
    what we recorded as taken. Call it before the event's transaction (no Stripe under locks).
    """
    if (
        payment.intent_status == IntentStatus.SUCCEEDED
        or payment.flagged
        or event.intent is not None
    ):
        return event
    return replace(event, intent=gateway.retrieve_payment_intent(payment.intent_id))


def refresh_payment(payment: Payment, intent: IntentSnapshot) -> None:
    """Copy what a PaymentIntent snapshot says of the payment; a charge or card once known stays."""
    payment.intent_status = intent.status
    payment.charge_id = intent.charge_id or payment.charge_id
    payment.card_brand = intent.card_brand or payment.card_brand
    payment.card_last4 = intent.card_last4 or payment.card_last4
    payment.last_error = intent.last_error
    payment.updated_at = timezone.now()
    fields = ["intent_status", "charge_id", "card_brand", "card_last4", "last_error", "updated_at"]
    payment.save(update_fields=fields)


def _flag(order: Order, payment: Payment, intent: IntentSnapshot, reason: str) -> None:
    payment.flagged, payment.flag_reason = True, reason
    payment.intent_status = intent.status
    payment.updated_at = timezone.now()
    payment.save()
    record_for_order(
        order,
        action="payment.flagged",
        actor_label=STRIPE,
        details={"payment_intent": intent.id, "reason": reason, "intent_status": intent.status},
    )
    logger.error("Payment %s for order %s flagged: %s", intent.id, order.number, reason)
