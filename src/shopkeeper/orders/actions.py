"""What a member of staff may do next with an order: one pure answer for the API and the UI.

An action is offered only when the caller's role allows it *and* the order's state would accept
it, so a button never leads to a refusal the rules could have predicted. When cancelling is
refused by the rules (not by the role), `cancel_blocked_reason` says why in words staff can act
on. No Django, no Stripe.
"""

from __future__ import annotations

from collections.abc import Collection
from enum import StrEnum

from shopkeeper.accounts.permissions import Permission
from shopkeeper.orders.rules import (
    OrderNotCancellable,
    OrderNotCapturable,
    OrderPaidRefundFirst,
    RefundInProgress,
    ensure_cancellable,
    ensure_capturable,
)
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.states import CAPTURED_STATUSES, PaymentStatus


class OrderAction(StrEnum):
    REFUND = "refund"
    CAPTURE = "capture"
    CANCEL = "cancel"
    # Offered by orders_view: fulfilment's and returns' rules sit above these.
    SHIP = "ship"
    CREATE_RETURN = "create_return"


CANCEL_BLOCKED_PAID = "a paid order must be refunded in full before it can be cancelled"
CANCEL_BLOCKED_REFUND_PENDING = "a refund is still in progress; cancel once it has settled"


def cancel_blocked_reason(
    order_status: OrderStatus | str,
    payment_status: PaymentStatus | str,
    *,
    has_pending_refund: bool,
) -> str | None:
    """Why the cancellation rules refuse this order now; None when they allow it."""
    try:
        ensure_cancellable(order_status, payment_status, has_pending_refund=has_pending_refund)
    except OrderPaidRefundFirst:
        return CANCEL_BLOCKED_PAID
    except RefundInProgress:
        return CANCEL_BLOCKED_REFUND_PENDING
    except OrderNotCancellable as refusal:
        return refusal.detail[:1].lower() + refusal.detail[1:]
    return None


def _can_capture(order_status: OrderStatus | str, payment_status: PaymentStatus | str) -> bool:
    try:
        ensure_capturable(order_status, payment_status)
    except OrderNotCapturable:
        return False
    return True


def available_actions(
    order_status: OrderStatus | str,
    payment_status: PaymentStatus | str,
    permissions: Collection[Permission | str],
    has_pending_refund: bool,
    *,
    refundable_minor: int,
) -> list[str]:
    """The actions to offer, in the order the UI shows them: refund, capture, cancel.

    Refund needs captured money still refundable (captured - refunded - pending refunds);
    capture needs an open authorisation; cancel needs the cancellation rules to agree.
    """
    allowed = {str(p) for p in permissions}
    actions: list[str] = []
    if (
        Permission.ORDERS_REFUND in allowed
        and PaymentStatus(payment_status) in CAPTURED_STATUSES
        and refundable_minor > 0
    ):
        actions.append(OrderAction.REFUND)
    if Permission.ORDERS_CAPTURE in allowed and _can_capture(order_status, payment_status):
        actions.append(OrderAction.CAPTURE)
    if Permission.ORDERS_CANCEL in allowed and (
        cancel_blocked_reason(order_status, payment_status, has_pending_refund=has_pending_refund)
        is None
    ):
        actions.append(OrderAction.CANCEL)
    return [str(action) for action in actions]
