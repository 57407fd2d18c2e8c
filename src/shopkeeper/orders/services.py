"""Staff actions on an order: cancel it (voiding any payment still open) and capture it
(`orders.capture`).

Both take the same three steps, because Stripe is never called while we hold row locks:

1. validate under lock (order row, then payment rows) and decide what Stripe must do;
2. call Stripe outside any transaction, with an idempotency key derived from the order, so a
   retried or double-clicked request does the work at Stripe at most once;
3. record in a second transaction that re-locks and re-validates (a webhook or a racing request
   may have changed the order meanwhile), committing the state change, its ledger rows and its
   audit entry together.

An unknown Stripe outcome (timeout, 5xx) raises `PaymentOutcomeUnknown` (503) and records
nothing: the same request later reuses the same key.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record_for_order
from shopkeeper.errors import (
    DomainError,
    InvalidInput,
    PaymentProviderUnavailable,
    PaymentRequestInvalid,
)
from shopkeeper.fulfilment.rules import OrderHasShipments
from shopkeeper.fulfilment.selectors import has_shipments
from shopkeeper.notifications.kinds import Kind
from shopkeeper.notifications.services import notify
from shopkeeper.orders.attention import VOID_AFTER_CAPTURE, OrderNeedsAttention, flag_order

# Capture lives in its own module; it is offered here too, next to cancel.
from shopkeeper.orders.capture import CaptureExceedsAuthorized as CaptureExceedsAuthorized
from shopkeeper.orders.capture import capture_order as capture_order
from shopkeeper.orders.claims import claim_order, release, release_claim, reserving
from shopkeeper.orders.locks import lock_order, lock_rows
from shopkeeper.orders.models import Order
from shopkeeper.orders.operations import Operation, OperationInProgress
from shopkeeper.orders.rules import OrderPaidRefundFirst, ensure_cancellable
from shopkeeper.orders.states import OrderStatus, move_order
from shopkeeper.orders.steps import (
    SOURCE,
    learn_why_stripe_refused,
    statuses,
)
from shopkeeper.orders.stock import restock_order
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.ledger import EntryKind, contradiction
from shopkeeper.payments.models import Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.selectors import payment_balance
from shopkeeper.payments.services import add_ledger_entry, refresh_payment
from shopkeeper.payments.states import PaymentStatus, move_payment
from shopkeeper.payments.stripe_statuses import FINISHED_INTENT_STATUSES, IntentStatus
from shopkeeper.refunds.selectors import has_refund_in_flight, has_refund_in_progress

MAX_REASON_LENGTH = 500


class CancelReasonRequired(InvalidInput):
    code = "reason_required"
    title = "A reason is required to cancel an order"


# --- cancel ---------------------------------------------------------------------------------


def cancel_order(
    *,
    order_number: str,
    reason: str,
    actor: Actor | None,
    actor_label: str = "",
    notify_customer: bool = True,
) -> Order:
    """Cancel an order that holds no captured money, voiding its open PaymentIntents first.

    Unpaid and authorised orders are cancelled (the PaymentIntent is cancelled at Stripe so it
    can no longer be paid, and an authorisation is voided); an order refunded in full with no
    refund pending is cancelled; a paid order must be refunded first. Reserved stock not yet
    returned goes back to the catalog. While a capture or a refund of the order is under way at
    Stripe, the answer is 409 `operation_in_progress`. Shopkeeper itself cancels with `actor`
    None and `actor_label` SYSTEM (a lapsing authorisation voided). `notify_customer`: mail
    the customer that the order is cancelled.
    """
    reason = _required_reason(reason)
    gateway = get_gateway()
    key = f"order-{order_number}-cancel"
    open_intents = reserving(order_number, gateway, lambda: _reserve_cancel(order_number, key))
    try:
        cancelled = [
            _cancel_at_stripe(order_number, intent_id, gateway) for intent_id in open_intents
        ]
    except PaymentProviderUnavailable:
        raise  # the outcome is unknown: the claim stays for its lease; this request may retry
    except BaseException:
        release(order_number, key)
        raise
    return _record_cancellation(
        order_number, reason, actor, actor_label, cancelled, key, notify_customer=notify_customer
    )


def _reserve_cancel(order_number: str, key: str) -> list[str]:
    with transaction.atomic():
        order = lock_order(number=order_number)
        payments = lock_rows(order, Payment.objects.all())
        if has_refund_in_flight(order):
            raise OperationInProgress(
                "A refund of this order is under way at Stripe; try again once it has finished",
                operation=str(Operation.REFUND),
            )
        _ensure_cancellable(order)
        claim_order(order, operation=Operation.CANCEL, key=key)
        return [p.intent_id for p in payments if p.intent_status not in FINISHED_INTENT_STATUSES]


def _required_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise CancelReasonRequired()
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidInput(f"The reason is limited to {MAX_REASON_LENGTH} characters")
    return reason


def _ensure_cancellable(order: Order) -> None:
    ensure_cancellable(
        order.status,
        order.payment_status,
        has_pending_refund=has_refund_in_progress(order),
    )
    if has_shipments(order):
        raise OrderHasShipments()


def _cancel_at_stripe(order_number: str, intent_id: str, gateway: PaymentGateway) -> IntentSnapshot:
    try:
        return gateway.cancel_payment_intent(
            intent_id, idempotency_key=f"order-{order_number}-cancel-{intent_id}"
        )
    except PaymentRequestInvalid as refusal:
        intent = learn_why_stripe_refused(intent_id, gateway, refusal)
        if intent.status == IntentStatus.SUCCEEDED:
            raise OrderPaidRefundFirst(
                "The customer paid before the cancellation reached Stripe; "
                "refund the order in full before cancelling it"
            ) from refusal
        if intent.status == IntentStatus.CANCELED:
            return intent
        raise


def _record_cancellation(
    order_number: str,
    reason: str,
    actor: Actor | None,
    actor_label: str,
    cancelled: list[IntentSnapshot],
    key: str,
    *,
    notify_customer: bool,
) -> Order:
    """Record the cancellation Stripe confirmed; the claim is released whatever happens.

    A void of a PaymentIntent our ledger has captured (an emulator that accepted both, or a
    capture in the Dashboard meanwhile) is not recorded: the order is flagged for a person.
    """
    with transaction.atomic():
        order = lock_order(number=order_number)
        payments = lock_rows(order, Payment.objects.all())
        release_claim(order, key)
        refusal = _flag_voids_after_capture(order, payments, cancelled)
        if refusal is None:
            try:
                _ensure_cancellable(order)  # again: it may have been paid or refunded meanwhile
            except DomainError as error:
                refusal = error
        if refusal is None:
            cancel_locked(
                order,
                payments,
                reason,
                actor,
                cancelled,
                actor_label=actor_label,
                notify_customer=notify_customer,
            )
    if refusal is not None:
        raise refusal
    return order


def _flag_voids_after_capture(
    order: Order, payments: list[Payment], cancelled: list[IntentSnapshot]
) -> DomainError | None:
    cancelled_ids = {intent.id for intent in cancelled}
    contradicted = [
        p
        for p in payments
        if p.intent_id in cancelled_ids and contradiction(payment_balance(p), EntryKind.VOID)
    ]
    for payment in contradicted:
        flag_order(
            order,
            code=VOID_AFTER_CAPTURE,
            subject=payment.intent_id,
            detail=f"Stripe cancelled PaymentIntent {payment.intent_id}, which our ledger has "
            "captured; nothing was recorded",
            actor_label="Stripe",
        )
    if not contradicted:
        return None
    return OrderNeedsAttention(
        "Stripe cancelled a payment our books have captured; the order is flagged for a person"
    )


def cancel_locked(
    order: Order,
    payments: list[Payment],
    reason: str,
    actor: Actor | None,
    cancelled: list[IntentSnapshot],
    *,
    action: str = "order.cancelled",
    actor_label: str = "",
    notify_customer: bool = True,
    **details: object,
) -> None:
    """Cancel the locked `order` (the cancellable rule checked): record the PaymentIntents
    Stripe cancelled, void what is still authorised, return the stock, audit it as `action`,
    and (unless not `notify_customer`) owe the customer the mail that says so."""
    before = statuses(order)
    cancelled_by_id = {intent.id: intent for intent in cancelled}
    voided = 0
    for payment in payments:
        if payment.intent_id in cancelled_by_id:
            refresh_payment(payment, cancelled_by_id[payment.intent_id])
        voided += _void_authorisation(payment)
    if order.payment_status != PaymentStatus.REFUNDED:
        order.payment_status = move_payment(order.payment_status, PaymentStatus.VOIDED)
    order.status = move_order(order.status, OrderStatus.CANCELLED)
    order.cancel_reason = reason
    order.cancelled_at = order.updated_at = timezone.now()
    changed = ["status", "payment_status", "cancel_reason", "cancelled_at", "updated_at"]
    order.save(update_fields=changed)
    restocked = restock_order(order)
    record_for_order(
        order,
        action=action,
        actor=actor,
        actor_label=actor_label,
        before=before,
        after=statuses(order),
        details={
            "reason": reason,
            "voided_minor": voided,
            "payment_intents_cancelled": sorted(cancelled_by_id),
            "restocked": restocked,
            "notify_customer": notify_customer,
            **details,
        },
    )
    if notify_customer:
        notify(
            order,
            Kind.ORDER_CANCELLED,
            event_key="cancelled",
            refunded=order.payment_status == PaymentStatus.REFUNDED,
        )


def _void_authorisation(payment: Payment) -> int:
    """Record the void of whatever the payment still had authorised; the amount voided."""
    capturable = payment_balance(payment).capturable
    entry = add_ledger_entry(
        payment=payment,
        kind=EntryKind.VOID,
        amount_minor=capturable,
        external_id=f"{payment.intent_id}:void",  # the id apply_intent uses: never twice
        source=SOURCE,
    )
    return entry.amount_minor if entry is not None else 0
