"""Recording what Stripe did with a refund. Call with the order and refund rows locked.

Whoever brings the news (our own request, a webhook, reconciliation), the same functions apply
it: a succeeded refund becomes one ledger row (at most once, keyed by Stripe's refund id), the
payment status follows the ledger, restocked lines go back to stock, and an audit row records
the move, all in the caller's transaction. Stale news (a `pending` after `succeeded`) changes
nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record_for_order
from shopkeeper.money import Money
from shopkeeper.notifications.kinds import Kind
from shopkeeper.notifications.services import money_details, notify
from shopkeeper.orders.attention import REFUND_EXCEEDS_CAPTURED, flag_order
from shopkeeper.orders.models import Order
from shopkeeper.orders.stock import restock_line
from shopkeeper.payments.gateway import RefundSnapshot
from shopkeeper.payments.ledger import EntryKind, contradiction, payment_status_for
from shopkeeper.payments.models import Payment
from shopkeeper.payments.selectors import OrderLedger, order_ledger
from shopkeeper.payments.services import append_to_ledger
from shopkeeper.payments.states import move_payment
from shopkeeper.payments.stripe_statuses import StripeRefundStatus
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import (
    RefundStatus,
    can_move_refund,
    move_refund,
    refund_status_for_stripe,
)
from shopkeeper.refunds.settled import refund_settled
from shopkeeper.rows import saved_fields, update_together

logger = logging.getLogger(__name__)

# What a send to Stripe changes on the refund row, saved with whatever the answer changes.
SENT_FIELDS = ("attempts", "last_sent_at")

FAILURE_MESSAGES = {
    "lost_or_stolen_card": "The card was reported lost or stolen, so the refund could not be sent",
    "expired_or_canceled_card": "The card has expired or was closed, so the refund could not be "
    "sent",
    "declined": "The customer's bank declined the refund",
}
DEFAULT_FAILURE_MESSAGE = "Stripe could not send the refund"


def failure_message(failure_reason: str, stripe_status: StripeRefundStatus) -> str:
    if stripe_status == StripeRefundStatus.CANCELED:
        return "The refund was canceled at Stripe"
    return FAILURE_MESSAGES.get(failure_reason, DEFAULT_FAILURE_MESSAGE)


def audit_refund(
    order: Order,
    refund: Refund,
    action: str,
    *,
    actor: Actor | None = None,
    actor_label: str = "",
    before: Any = None,
    after: Any = None,
    **details: Any,
) -> None:
    record_for_order(
        order,
        action=f"order.refund.{action}",
        actor=actor,
        actor_label=actor_label,
        before=before,
        after=after,
        details={
            "refund_id": refund.pk,
            "amount": str(refund.money),
            "stripe_refund_id": refund.stripe_refund_id or "",
            **details,
        },
    )


def apply_snapshot(
    *,
    order: Order,
    refund: Refund,
    snapshot: RefundSnapshot,
    source: str,
    actor: Actor | None = None,
    actor_label: str = "",
    ledger: OrderLedger | None = None,
) -> bool:
    """Move `refund` to what Stripe reports. False when the news is stale or contradicts us.

    `ledger`: the order's ledger as the caller read it under the lock (else it is read here).
    """
    if refund.stripe_refund_id and snapshot.id and refund.stripe_refund_id != snapshot.id:
        logger.error(
            "Refund %s is %s at Stripe, not %s", refund.pk, refund.stripe_refund_id, snapshot.id
        )
        return False
    refund.stripe_refund_id = snapshot.id or refund.stripe_refund_id
    current, target = RefundStatus(refund.status), refund_status_for_stripe(snapshot.status)
    if ledger is None:
        ledger = order_ledger(order.pk)
    if (
        target == current
        or not can_move_refund(current, target)
        or (
            target == RefundStatus.SUCCEEDED
            and refund_exceeds_captured(
                order, refund.payment, snapshot, source=source, ledger=ledger
            )
        )
    ):
        refund.updated_at = timezone.now()
        refund.save(update_fields=[*SENT_FIELDS, "stripe_refund_id", "updated_at"])
        return False
    if target == RefundStatus.SUCCEEDED:
        _record_success(refund, snapshot, source, ledger)
    elif current == RefundStatus.SUCCEEDED:
        _record_reversal(refund, snapshot, source, ledger)
    if target in (RefundStatus.FAILED, RefundStatus.CANCELED):
        refund.failure_message = failure_message(snapshot.failure_reason, snapshot.status)
    before = {"status": current, "payment_status": order.payment_status}
    _settle(refund, target, save=False)
    if payment_status_moves(order, ledger):  # the refund and the order in one statement
        update_together((refund, saved_fields(Refund)), (order, ["payment_status", "updated_at"]))
    else:
        refund.save()
    audit_refund(
        order,
        refund,
        str(target),
        actor=actor,
        actor_label=actor_label,
        before=before,
        after={"status": refund.status, "payment_status": order.payment_status},
        source=source,
        failure_reason=snapshot.failure_reason,
    )
    if target == RefundStatus.SUCCEEDED and refund.notify_customer:
        notify(order, Kind.REFUND_MADE, event_key=f"refund:{refund.pk}", **refund_details(refund))
    refund_settled(order, refund)
    return True


def refund_details(refund: Refund) -> dict[str, str]:
    """What a customer's mail says of a refund: the amount, and the card it goes back to."""
    payment = refund.payment
    return money_details(refund.money, card_brand=payment.card_brand, card_last4=payment.card_last4)


def refund_exceeds_captured(
    order: Order,
    payment: Payment,
    snapshot: RefundSnapshot,
    *,
    source: str,
    ledger: OrderLedger | None = None,
) -> bool:
    """Would booking this refund's success put refunded + disputed above captured? Then it is
    not booked: the order is flagged for a person (once per Stripe refund) and audited."""
    if refund_status_for_stripe(snapshot.status) != RefundStatus.SUCCEEDED:
        return False
    balance = (ledger or order_ledger(payment.order_id)).payment_balance(payment.pk)
    reason = contradiction(balance, EntryKind.REFUND, snapshot.amount)
    if not reason:
        return False
    flag_order(
        order,
        code=REFUND_EXCEEDS_CAPTURED,
        subject=snapshot.id,
        detail=f"Stripe reports refund {snapshot.id} of {_shown(snapshot.amount, payment)} "
        f"succeeded, but refunded {_shown(balance.refunded, payment)} + disputed "
        f"{_shown(balance.disputed, payment)} would then pass captured "
        f"{_shown(balance.captured, payment)}; not booked",
        actor_label="Stripe",
        source=source,
        payment_intent=payment.intent_id,
    )
    return True


def _shown(minor: int, payment: Payment) -> str:
    return str(Money(minor, payment.currency))


def fail_refund(
    *, order: Order, refund: Refund, message: str, actor: Actor | None = None, actor_label: str = ""
) -> None:
    """Stripe refused the refund outright: nothing left the shop, the amount is released."""
    before = {"status": refund.status}
    refund.failure_message = message[:500]
    _settle(refund, RefundStatus.FAILED)
    audit_refund(
        order,
        refund,
        "failed",
        actor=actor,
        actor_label=actor_label,
        before=before,
        after={"status": refund.status},
        error=refund.failure_message,
    )
    refund_settled(order, refund)


def payment_status_moves(order: Order, ledger: OrderLedger | None = None) -> bool:
    """Move `order.payment_status` (unsaved) to what the ledger proves (refunded in full, in
    part, or paid again); whether it moved."""
    balance = (ledger or order_ledger(order.pk)).balance()
    target = payment_status_for(balance, order.payment_status)
    if target == order.payment_status:
        return False
    order.payment_status = move_payment(order.payment_status, target)
    order.updated_at = timezone.now()
    return True


def _settle(refund: Refund, target: RefundStatus, *, save: bool = True) -> None:
    refund.status = move_refund(refund.status, target)
    refund.updated_at = timezone.now()
    if target != RefundStatus.PENDING:
        refund.settled_at = refund.updated_at
    if save:
        refund.save()


def _record_success(
    refund: Refund, snapshot: RefundSnapshot, source: str, ledger: OrderLedger
) -> None:
    if snapshot.amount != refund.amount_minor:
        logger.error(
            "Refund %s: Stripe refunded %s, we asked for %s; the ledger follows Stripe",
            refund.pk,
            snapshot.amount,
            refund.amount_minor,
        )
    append_to_ledger(
        ledger,
        payment=refund.payment,
        kind=EntryKind.REFUND,
        amount_minor=snapshot.amount or refund.amount_minor,
        external_id=snapshot.id,
        source=source,
        stripe_refund_id=snapshot.id,
        stripe_charge_id=snapshot.charge_id,
    )
    _restock(refund)


def _record_reversal(
    refund: Refund, snapshot: RefundSnapshot, source: str, ledger: OrderLedger
) -> None:
    """A refund reported failed after it succeeded: the money is back with the shop.

    Restocked units stay in stock: the goods came back whatever happened to the money.
    """
    append_to_ledger(
        ledger,
        payment=refund.payment,
        kind=EntryKind.REFUND_REVERSAL,
        amount_minor=snapshot.amount or refund.amount_minor,
        external_id=snapshot.id,
        source=source,
        stripe_refund_id=snapshot.id,
        stripe_charge_id=snapshot.charge_id,
    )


def _restock(refund: Refund) -> None:
    if getattr(refund, "has_restock", None) is False:  # read with the refund (services.py)
        return
    for line in refund.lines.filter(restock=True).select_related("order_line"):
        restock_line(line.order_line, line.quantity)
