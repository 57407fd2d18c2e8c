"""Staff actions on an order: cancel it (voiding any payment still open) and capture it.

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

from typing import Any

from django.db import transaction
from django.utils import timezone

from shopkeeper.audit.services import record_for_order
from shopkeeper.catalog.services import return_stock
from shopkeeper.errors import (
    Conflict,
    DomainError,
    InvalidAmount,
    InvalidInput,
    PaymentProviderUnavailable,
)
from shopkeeper.money import Money
from shopkeeper.orders.attention import (
    CAPTURE_AFTER_VOID,
    VOID_AFTER_CAPTURE,
    OrderNeedsAttention,
    flag_order,
)
from shopkeeper.orders.claims import claim_order, release, release_claim, reserving
from shopkeeper.orders.models import Order
from shopkeeper.orders.operations import Operation, OperationInProgress
from shopkeeper.orders.selectors import OrderNotFound
from shopkeeper.orders.states import (
    OrderNotCapturable,
    OrderPaidRefundFirst,
    OrderStatus,
    PaymentStatus,
    can_move_payment,
    ensure_cancellable,
    ensure_capturable,
    move_order,
    move_payment,
)
from shopkeeper.payments.gateway import (
    IntentSnapshot,
    PaymentGateway,
    PaymentRequestInvalid,
    get_gateway,
)
from shopkeeper.payments.ledger import Balance, EntryKind, contradiction, payment_status_for
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.payments.selectors import order_balance, payment_balance
from shopkeeper.payments.services import add_ledger_entry, apply_intent
from shopkeeper.refunds.selectors import has_refund_in_flight, has_refund_in_progress

# PaymentIntent statuses from which nothing more can happen to the money.
FINISHED_INTENT_STATUSES = frozenset({"canceled", "succeeded"})
MAX_REASON_LENGTH = 500
SOURCE = "shopkeeper"


class CancelReasonRequired(InvalidInput):
    code = "reason_required"
    title = "A reason is required to cancel an order"


class CaptureExceedsAuthorized(Conflict):
    code = "capture_exceeds_authorized"
    title = "The amount to capture exceeds what is authorised"


class PaymentProcessing(Conflict):
    code = "payment_processing"
    title = "The payment is being processed; try again once it has settled"


# --- shared steps ---------------------------------------------------------------------------


def _locked_order(number: str) -> Order:
    order = Order.objects.select_for_update().filter(number=number).first()
    if order is None:
        raise OrderNotFound(f"No order {number!r}", number=number)
    return order


def _locked_payments(order: Order) -> list[Payment]:
    return list(Payment.objects.select_for_update().filter(order=order).order_by("id"))


def _statuses(order: Order) -> dict[str, str]:
    return {"status": str(order.status), "payment_status": str(order.payment_status)}


def _refresh_payment(payment: Payment, intent: IntentSnapshot) -> None:
    payment.intent_status = intent.status
    payment.charge_id = intent.charge_id or payment.charge_id
    payment.card_brand = intent.card_brand or payment.card_brand
    payment.card_last4 = intent.card_last4 or payment.card_last4
    payment.updated_at = timezone.now()
    payment.save(
        update_fields=["intent_status", "charge_id", "card_brand", "card_last4", "updated_at"]
    )


def _learn_why_stripe_refused(
    intent_id: str, gateway: PaymentGateway, refusal: PaymentRequestInvalid
) -> IntentSnapshot:
    """Stripe refused a cancel or capture: fetch the PaymentIntent and record what it proves."""
    intent = gateway.retrieve_payment_intent(intent_id)
    apply_intent(intent, source="stripe")
    if intent.status == "processing":
        raise PaymentProcessing() from refusal
    return intent


# --- cancel ---------------------------------------------------------------------------------


def cancel_order(*, order_number: str, reason: str, actor: Any) -> Order:
    """Cancel an order that holds no captured money, voiding its open PaymentIntents first.

    Unpaid and authorised orders are cancelled (the PaymentIntent is cancelled at Stripe so it
    can no longer be paid, and an authorisation is voided); an order refunded in full with no
    refund pending is cancelled; a paid order must be refunded first. Reserved stock not yet
    returned goes back to the catalog. While a capture or a refund of the order is under way at
    Stripe, the answer is 409 `operation_in_progress`.
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
    return _record_cancellation(order_number, reason, actor, cancelled, key)


def _reserve_cancel(order_number: str, key: str) -> list[str]:
    with transaction.atomic():
        order = _locked_order(order_number)
        payments = _locked_payments(order)
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


def _cancel_at_stripe(order_number: str, intent_id: str, gateway: PaymentGateway) -> IntentSnapshot:
    try:
        return gateway.cancel_payment_intent(
            intent_id, idempotency_key=f"order-{order_number}-cancel-{intent_id}"
        )
    except PaymentRequestInvalid as refusal:
        intent = _learn_why_stripe_refused(intent_id, gateway, refusal)
        if intent.status == "succeeded":
            raise OrderPaidRefundFirst(
                "The customer paid before the cancellation reached Stripe; "
                "refund the order in full before cancelling it"
            ) from refusal
        if intent.status == "canceled":
            return intent
        raise


def _record_cancellation(
    order_number: str, reason: str, actor: Any, cancelled: list[IntentSnapshot], key: str
) -> Order:
    """Record the cancellation Stripe confirmed; the claim is released whatever happens.

    A void of a PaymentIntent our ledger has captured (an emulator that accepted both, or a
    capture in the Dashboard meanwhile) is not recorded: the order is flagged for a person.
    """
    with transaction.atomic():
        order = _locked_order(order_number)
        payments = _locked_payments(order)
        release_claim(order, key)
        refusal = _flag_voids_after_capture(order, payments, cancelled)
        if refusal is None:
            try:
                _ensure_cancellable(order)  # again: it may have been paid or refunded meanwhile
            except DomainError as error:
                refusal = error
        if refusal is None:
            _cancel_locked(order, payments, reason, actor, cancelled)
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


def _cancel_locked(
    order: Order, payments: list[Payment], reason: str, actor: Any, cancelled: list[IntentSnapshot]
) -> None:
    before = _statuses(order)
    cancelled_ids = {intent.id for intent in cancelled}
    voided = 0
    for payment in payments:
        if payment.intent_id in cancelled_ids:
            payment.intent_status = "canceled"
            payment.updated_at = timezone.now()
            payment.save(update_fields=["intent_status", "updated_at"])
        voided += _void_authorisation(payment)
    if order.payment_status != PaymentStatus.REFUNDED:
        order.payment_status = move_payment(order.payment_status, PaymentStatus.VOIDED)
    order.status = move_order(order.status, OrderStatus.CANCELLED)
    order.cancel_reason = reason
    order.cancelled_at = order.updated_at = timezone.now()
    changed = ["status", "payment_status", "cancel_reason", "cancelled_at", "updated_at"]
    order.save(update_fields=changed)
    restocked = _return_reserved_stock(order)
    record_for_order(
        order,
        action="order.cancelled",
        actor=actor,
        before=before,
        after=_statuses(order),
        details={
            "reason": reason,
            "voided_minor": voided,
            "payment_intents_cancelled": sorted(cancelled_ids),
            "restocked": restocked,
        },
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


def _return_reserved_stock(order: Order) -> dict[str, int]:
    returned: dict[str, int] = {}
    for line in order.lines.select_for_update().order_by("id"):
        outstanding = line.quantity - line.restocked_quantity
        if outstanding <= 0:
            continue
        if line.product_id is not None:
            return_stock(line.product_id, outstanding)
            returned[line.sku] = returned.get(line.sku, 0) + outstanding
        line.restocked_quantity = line.quantity
        line.save(update_fields=["restocked_quantity"])
    return returned


# --- capture --------------------------------------------------------------------------------


def capture_order(*, order_number: str, amount: str | None = None, actor: Any) -> Order:
    """Capture an authorised payment in full or in part (manual-capture mode).

    `amount` is a decimal string in the order's currency, more than zero and at most what is
    authorised; without it everything authorised is captured. Stripe releases the rest. While
    a cancel or another capture of the order is under way at Stripe, the answer is 409
    `operation_in_progress` (a retry of the same capture goes ahead).
    """
    gateway = get_gateway()
    intent_id, to_capture, key = reserving(
        order_number, gateway, lambda: _reserve_capture(order_number, amount)
    )
    try:
        intent = _capture_at_stripe(intent_id, to_capture, gateway, key)
    except PaymentProviderUnavailable:
        raise  # the outcome is unknown: the claim stays for its lease; this request may retry
    except BaseException:
        release(order_number, key)
        raise
    return _record_capture(order_number, intent_id, to_capture, intent, actor, key)


def _reserve_capture(order_number: str, amount: str | None) -> tuple[str, Money, str]:
    with transaction.atomic():
        order = _locked_order(order_number)
        payments = _locked_payments(order)
        ensure_capturable(order.status, order.payment_status)
        payment = _authorised_payment(payments)
        to_capture = _amount_to_capture(amount, order.currency, payment_balance(payment))
        # The amount is part of the key: a retry of this request replays Stripe's answer, while
        # a corrected amount after a refusal is a new request, as Stripe's key rules require.
        key = f"order-{order_number}-capture-{payment.intent_id}-{to_capture.minor}"
        claim_order(order, operation=Operation.CAPTURE, key=key)
        return payment.intent_id, to_capture, key


def _authorised_payment(payments: list[Payment]) -> Payment:
    for payment in reversed(payments):
        if payment_balance(payment).capturable > 0:
            return payment
    raise OrderNotCapturable("Nothing authorised is left to capture")


def _amount_to_capture(amount: str | None, currency: str, balance: Balance) -> Money:
    if amount is None:
        return Money(balance.capturable, currency)
    money = Money.parse(amount, currency)
    if money.minor <= 0:
        raise InvalidAmount("The amount to capture must be more than zero")
    if money.minor > balance.capturable:
        raise CaptureExceedsAuthorized(
            f"At most {Money(balance.capturable, currency)} can be captured",
            capturable=Money(balance.capturable, currency).to_decimal_string(),
            capturable_minor=balance.capturable,
        )
    return money


def _capture_at_stripe(
    intent_id: str, amount: Money, gateway: PaymentGateway, key: str
) -> IntentSnapshot:
    try:
        return gateway.capture_payment_intent(intent_id, amount=amount, idempotency_key=key)
    except PaymentRequestInvalid as refusal:
        intent = _learn_why_stripe_refused(intent_id, gateway, refusal)
        if intent.status in FINISHED_INTENT_STATUSES:
            raise OrderNotCapturable(
                f"The payment can no longer be captured: Stripe reports it {intent.status}",
                intent_status=intent.status,
            ) from refusal
        raise


def _record_capture(
    order_number: str,
    intent_id: str,
    captured: Money,
    intent: IntentSnapshot,
    actor: Any,
    key: str,
) -> Order:
    """Stripe has taken the money: record it, each movement once, and release the claim.

    A concurrent identical request (a double click) got Stripe's replayed answer: when our own
    capture is already recorded, it is the same capture and nothing more is written. A capture
    of an authorisation our ledger has voided is not recorded: the order is flagged.
    """
    with transaction.atomic():
        order = _locked_order(order_number)
        payment = next(p for p in _locked_payments(order) if p.intent_id == intent_id)
        release_claim(order, key)
        ours = LedgerEntry.objects.filter(
            kind=EntryKind.CAPTURE, external_id=f"{intent_id}:capture", source=SOURCE
        )
        contradicted = contradiction(payment_balance(payment), EntryKind.CAPTURE)
        if contradicted:
            flag_order(
                order,
                code=CAPTURE_AFTER_VOID,
                subject=intent_id,
                detail=f"Stripe captured {captured} of PaymentIntent {intent_id}, which our "
                "ledger has voided; nothing was recorded",
                actor_label="Stripe",
            )
        elif not ours.exists():
            _record_captured_money(order, payment, captured, intent, actor)
    if contradicted:
        raise OrderNeedsAttention(
            "Stripe captured a payment our books have voided; the order is flagged for a person"
        )
    return order


def _record_captured_money(
    order: Order, payment: Payment, captured: Money, intent: IntentSnapshot, actor: Any
) -> None:
    intent_id = payment.intent_id
    before = _statuses(order)
    _refresh_payment(payment, intent)
    charge = {"stripe_charge_id": intent.charge_id} if intent.charge_id else {}
    # The amount we asked for, not the one reported: localstripe misreports partial
    # captures. The external ids are apply_intent's, so a webhook cannot double them.
    add_ledger_entry(
        payment=payment,
        kind=EntryKind.CAPTURE,
        amount_minor=captured.minor,
        external_id=f"{intent_id}:capture",
        source=SOURCE,
        **charge,
    )
    released = payment_balance(payment).authorized - captured.minor
    add_ledger_entry(
        payment=payment,
        kind=EntryKind.RELEASE,
        amount_minor=released,
        external_id=f"{intent_id}:release",
        source=SOURCE,
        **charge,
    )
    target = payment_status_for(order_balance(order), order.payment_status)
    if can_move_payment(order.payment_status, target):
        order.payment_status = target
        order.updated_at = timezone.now()
        order.save(update_fields=["payment_status", "updated_at"])
    record_for_order(
        order,
        action="order.captured",
        actor=actor,
        before=before,
        after=_statuses(order),
        details={
            "payment_intent": intent_id,
            "amount": captured.to_decimal_string(),
            "amount_minor": captured.minor,
            "released_minor": max(released, 0),
            "currency": captured.currency,
        },
    )
