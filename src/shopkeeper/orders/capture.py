"""Capturing an authorised payment (manual-capture mode): reserve under the order's lock (and
claim the order, `orders.claims`), capture at Stripe outside any transaction, record in a second
transaction. See `orders.services` for the three steps both money operations take."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record_for_order
from shopkeeper.errors import (
    Conflict,
    InvalidAmount,
    PaymentProviderUnavailable,
    PaymentRequestInvalid,
)
from shopkeeper.money import Money
from shopkeeper.orders.attention import CAPTURE_AFTER_VOID, OrderNeedsAttention, flag_order
from shopkeeper.orders.claims import claim_order, release, release_claim, reserving
from shopkeeper.orders.locks import lock_order, lock_rows
from shopkeeper.orders.models import Order
from shopkeeper.orders.operations import Operation
from shopkeeper.orders.rules import OrderNotCapturable, ensure_capturable
from shopkeeper.orders.settling import money_moved
from shopkeeper.orders.steps import (
    SOURCE,
    learn_why_stripe_refused,
    statuses,
)
from shopkeeper.payments.gateway import IntentSnapshot, PaymentGateway
from shopkeeper.payments.ledger import Balance, EntryKind, contradiction, payment_status_for
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.payments.provider import get_gateway
from shopkeeper.payments.selectors import order_balance, payment_balance
from shopkeeper.payments.services import add_ledger_entry, refresh_payment
from shopkeeper.payments.states import can_move_payment
from shopkeeper.payments.stripe_statuses import FINISHED_INTENT_STATUSES


class CaptureExceedsAuthorized(Conflict):
    code = "capture_exceeds_authorized"
    title = "The amount to capture exceeds what is authorised"


def capture_order(
    *, order_number: str, amount: str | None = None, actor: Actor | None, actor_label: str = ""
) -> Order:
    """Capture an authorised payment in full or in part (manual-capture mode).

    `amount` is a decimal string in the order's currency, more than zero and at most what is
    authorised; without it everything authorised is captured. Stripe releases the rest. While
    a cancel or another capture of the order is under way at Stripe, the answer is 409
    `operation_in_progress` (a retry of the same capture goes ahead). Shopkeeper itself
    captures with `actor` None and `actor_label` SYSTEM (a lapsing authorisation captured).
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
    return _record_capture(order_number, intent_id, to_capture, intent, (actor, actor_label), key)


def _reserve_capture(order_number: str, amount: str | None) -> tuple[str, Money, str]:
    with transaction.atomic():
        order = lock_order(number=order_number)
        payments = lock_rows(order, Payment.objects.all())
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
        intent = learn_why_stripe_refused(intent_id, gateway, refusal)
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
    by: tuple[Actor | None, str],
    key: str,
) -> Order:
    """Stripe has taken the money: record it, each movement once, and release the claim.

    A concurrent identical request (a double click) got Stripe's replayed answer: when our own
    capture is already recorded, it is the same capture and nothing more is written. A capture
    of an authorisation our ledger has voided is not recorded: the order is flagged.
    """
    with transaction.atomic():
        order = lock_order(number=order_number)
        payment = next(
            p for p in lock_rows(order, Payment.objects.all()) if p.intent_id == intent_id
        )
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
            _record_captured_money(order, payment, captured, intent, by)
    if contradicted:
        raise OrderNeedsAttention(
            "Stripe captured a payment our books have voided; the order is flagged for a person"
        )
    return order


def _record_captured_money(
    order: Order,
    payment: Payment,
    captured: Money,
    intent: IntentSnapshot,
    by: tuple[Actor | None, str],
) -> None:
    intent_id = payment.intent_id
    before = statuses(order)
    refresh_payment(payment, intent)
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
        actor=by[0],
        actor_label=by[1],
        before=before,
        after=statuses(order),
        details={
            "payment_intent": intent_id,
            "amount": captured.to_decimal_string(),
            "amount_minor": captured.minor,
            "released_minor": max(released, 0),
            "currency": captured.currency,
        },
    )
    money_moved(order)
