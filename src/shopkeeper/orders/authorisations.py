"""Authorisations don't lapse: what the worker does with a card authorisation left uncaptured.

Stripe releases an uncaptured card authorisation about 7 days after it was made, silently. From
`SHOPKEEPER_AUTH_WARN_AFTER` on, the back office warns (computed when read: orders_view.
authorisations); at `SHOPKEEPER_AUTH_EXPIRE_AFTER` the hourly `find_lapsing_authorisations`
defers one `act_on_lapsing_authorisation` per authorisation past it, with the PaymentIntent's
job lock (`stripe:<pi>`, as its webhooks: never at the same time as one of them), and the job
applies `SHOPKEEPER_AUTH_EXPIRY_ACTION` through the staff's own use cases, audited under SYSTEM:

- `void`: the order is cancelled as staff's cancel does it (the authorisation voided at Stripe,
  the stock returned);
- `capture`: everything authorised is captured;
- `notify`: the order is flagged (`authorization_expiring`) once per PaymentIntent; nothing
  happens at Stripe.

Stripe unavailable or its outcome unknown: nothing is recorded, the claim on the order stays for
its lease, and the next hourly run tries again with the same idempotency key. Stripe refusing
(a capture of an authorisation it has already let lapse) or the order refusing: the order is
flagged for a person, unless it was captured or cancelled meanwhile.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from procrastinate import exceptions
from procrastinate.contrib.django import app

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.errors import DomainError, PaymentProviderUnavailable
from shopkeeper.jobs.defer import defer_in_transaction
from shopkeeper.orders.attention import (
    AUTHORIZATION_EXPIRING,
    OrderNeedsAttention,
    flag_order,
)
from shopkeeper.orders.authorisation_rules import ExpiryAction, span_text
from shopkeeper.orders.capture import capture_order
from shopkeeper.orders.locks import lock_order, lock_rows
from shopkeeper.orders.models import Attention, Order
from shopkeeper.orders.operations import OperationInProgress
from shopkeeper.orders.services import cancel_order
from shopkeeper.orders.states import OrderStatus
from shopkeeper.orders_view.authorisations import open_authorisations, window
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import payment_balance

logger = logging.getLogger(__name__)

# Authorisations handled per run at most, oldest first; the rest wait an hour.
BATCH = 500
DONE = {
    ExpiryAction.VOID: "voided",
    ExpiryAction.CAPTURE: "captured",
    ExpiryAction.NOTIFY: "flagged",
}


def expiry_action() -> ExpiryAction:
    return ExpiryAction(settings.SHOPKEEPER_AUTH_EXPIRY_ACTION)


def lapsed_payments() -> list[tuple[int, str]]:
    """(payment id, PaymentIntent id) of the open authorisations past EXPIRE_AFTER, oldest
    first, from `payment_open_authorisation_idx`; under `notify`, those not flagged already."""
    lapsed = open_authorisations().filter(
        authorized_at__lte=window().expired_before(timezone.now())
    )
    if expiry_action() == ExpiryAction.NOTIFY:
        flagged = Attention.objects.filter(
            order_id=OuterRef("order_id"),
            code=AUTHORIZATION_EXPIRING,
            subject=OuterRef("intent_id"),
        )
        lapsed = lapsed.exclude(Exists(flagged))
    return list(lapsed.order_by("authorized_at").values_list("pk", "intent_id")[:BATCH])


@app.periodic(cron="17 * * * *", periodic_id="hourly")
@app.task(name="orders.find_lapsing_authorisations", queue="periodic")
def find_lapsing_authorisations(timestamp: int) -> int:
    """Defer one job per authorisation past EXPIRE_AFTER (hourly); how many were deferred."""
    deferred = 0
    for payment_id, intent_id in lapsed_payments():
        try:
            with transaction.atomic():
                defer_in_transaction(
                    act_on_lapsing_authorisation,
                    lock=f"stripe:{intent_id}",
                    queueing_lock=f"lapse:{intent_id}",
                    payment_id=payment_id,
                )
        except exceptions.AlreadyEnqueued:
            continue  # its job from an earlier run has not run yet
        deferred += 1
    if deferred:
        logger.info("%s lapsing authorisation(s): %s each", deferred, expiry_action())
    return deferred


@app.task(name="orders.act_on_lapsing_authorisation", queue="periodic")
def act_on_lapsing_authorisation(payment_id: int) -> None:
    """Apply SHOPKEEPER_AUTH_EXPIRY_ACTION to one lapsing authorisation, if it still is one."""
    payment = _still_lapsed(payment_id)
    if payment is None:
        return  # captured, voided or cancelled since it was found
    action = expiry_action()
    if action == ExpiryAction.NOTIFY:
        _notify(payment_id)
        return
    number = payment.order.number
    try:
        if action == ExpiryAction.VOID:
            cancel_order(
                order_number=number,
                reason="Authorisation not captured within "
                f"{span_text(settings.SHOPKEEPER_AUTH_EXPIRE_AFTER)}: voided by Shopkeeper",
                actor=None,
                actor_label=SYSTEM,
            )
        else:
            capture_order(order_number=number, actor=None, actor_label=SYSTEM)
    except PaymentProviderUnavailable as unavailable:
        logger.warning(
            "Order %s: lapsing authorisation %s not %s, Stripe unavailable (%s); next run retries",
            number,
            payment.intent_id,
            DONE[action],
            unavailable.detail,
        )
    except OperationInProgress:
        logger.info("Order %s: a capture or cancel is under way; next run looks again", number)
    except OrderNeedsAttention:
        return  # the use case has flagged the order itself
    except DomainError as refusal:
        _flag_refusal(payment_id, action, refusal)


def _still_lapsed(payment_id: int) -> Payment | None:
    cutoff = window().expired_before(timezone.now())
    lapsed = open_authorisations().filter(pk=payment_id, authorized_at__lte=cutoff)
    return lapsed.select_related("order").first()


def _lock(payment_id: int) -> tuple[Order, Payment]:
    """The payment's order, then the payment, locked (orders.locks' order); in a transaction."""
    order_id = Payment.objects.filter(pk=payment_id).values_list("order_id", flat=True)[0]
    order = lock_order(pk=order_id)
    (payment,) = lock_rows(order, Payment.objects.filter(pk=payment_id))
    return order, payment


def _notify(payment_id: int) -> None:
    """Flag the order once per PaymentIntent (a person who resolved it has decided), audited."""
    with transaction.atomic():
        order, payment = _lock(payment_id)
        if _still_lapsed(payment_id) is None or _flagged(payment):
            return
        assert payment.authorized_at is not None
        expires_at = window().expires_at(payment.authorized_at)
        flag_order(
            order,
            code=AUTHORIZATION_EXPIRING,
            subject=payment.intent_id,
            detail=f"The authorisation of PaymentIntent {payment.intent_id} was not captured by "
            f"{expires_at:%Y-%m-%d %H:%M} UTC; Stripe lets it lapse about 7 days after it was "
            "made: capture or cancel the order now",
            actor_label=SYSTEM,
            authorized_at=payment.authorized_at.isoformat(),
            expires_at=expires_at.isoformat(),
        )
    logger.warning(
        "Order %s: authorisation %s past its deadline, not captured",
        order.number,
        payment.intent_id,
    )


def _flagged(payment: Payment) -> bool:
    """Flagged for this PaymentIntent before, open or resolved."""
    return Attention.objects.filter(
        order_id=payment.order_id, code=AUTHORIZATION_EXPIRING, subject=payment.intent_id
    ).exists()


def _flag_refusal(payment_id: int, action: ExpiryAction, refusal: DomainError) -> None:
    """Stripe or the order refused the action: a person must look, unless the authorisation was
    captured or the order cancelled meanwhile (by staff, or by news from Stripe)."""
    with transaction.atomic():
        order, payment = _lock(payment_id)
        if order.status == OrderStatus.CANCELLED or payment_balance(payment).captured > 0:
            return
        flag_order(
            order,
            code=AUTHORIZATION_EXPIRING,
            subject=payment.intent_id,
            detail=f"Shopkeeper could not {action} the lapsing authorisation of "
            f"PaymentIntent {payment.intent_id}: {refusal.detail}",
            actor_label=SYSTEM,
            error=refusal.code,
        )
    logger.warning(
        "Order %s: lapsing authorisation %s not %s: %s",
        order.number,
        payment.intent_id,
        DONE[action],
        refusal.detail,
    )
