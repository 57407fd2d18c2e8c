"""What may be done to an order given its payment's state: pure rules, no Django, no Stripe.

They read both state machines (orders.states, payments.states), so they sit above payments
with the order services that apply them.
"""

from __future__ import annotations

from datetime import timedelta

from shopkeeper.durations import format_duration
from shopkeeper.errors import Conflict
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.states import CAPTURED_STATUSES, UNPAID_STATUSES, PaymentStatus


class OrderPaidRefundFirst(Conflict):
    code = "order_paid_refund_first"
    title = "A paid order must be refunded in full before it can be cancelled"


class OrderNotCancellable(Conflict):
    code = "order_not_cancellable"
    title = "This order cannot be cancelled"


class RefundInProgress(Conflict):
    code = "refund_in_progress"
    title = "A refund of this order is still in progress; cancel it once the refund has settled"


class OrderNotCapturable(Conflict):
    code = "order_not_capturable"
    title = "Only an authorised payment can be captured"


def ensure_cancellable(
    order_status: OrderStatus | str,
    payment_status: PaymentStatus | str,
    *,
    has_pending_refund: bool = False,
) -> None:
    """The cancellation rule; the caller says whether a refund is pending or awaiting approval.

    Unpaid (pending, failed), authorised (voided on cancel) and fully refunded orders can be
    cancelled. A refund still on its way must settle first, since it may yet fail and give the
    money back: that is the answer even for an order still paid, as staff have already acted.
    Otherwise an order holding captured money must be refunded in full first.
    """
    order_status, payment_status = OrderStatus(order_status), PaymentStatus(payment_status)
    if order_status == OrderStatus.CANCELLED:
        raise OrderNotCancellable("This order is already cancelled")
    if order_status == OrderStatus.CLOSED:
        raise OrderNotCancellable("A closed order cannot be cancelled")
    if has_pending_refund:
        raise RefundInProgress()
    if payment_status in CAPTURED_STATUSES:
        raise OrderPaidRefundFirst()


def ensure_capturable(order_status: OrderStatus | str, payment_status: PaymentStatus | str) -> None:
    """Capture takes an authorisation that is still open: nothing captured, nothing voided."""
    order_status, payment_status = OrderStatus(order_status), PaymentStatus(payment_status)
    if order_status in (OrderStatus.CANCELLED, OrderStatus.CLOSED):
        raise OrderNotCapturable(f"A {order_status} order cannot be captured")
    if payment_status != PaymentStatus.AUTHORIZED:
        raise OrderNotCapturable(
            f"Only an authorised payment can be captured; this one is {payment_status}",
            payment_status=str(payment_status),
        )


def is_due_to_expire(
    order_status: OrderStatus | str,
    payment_status: PaymentStatus | str,
    *,
    age: timedelta,
    ttl: timedelta,
) -> bool:
    """An open order nobody has paid (pending, or declined and not retried) expires `ttl` after
    checkout. An authorised or paid order never does, nor one already cancelled or closed."""
    return (
        OrderStatus(order_status) == OrderStatus.PENDING
        and PaymentStatus(payment_status) in UNPAID_STATUSES
        and age >= ttl
    )


def expiry_reason(ttl: timedelta) -> str:
    """The cancel reason an expired order shows: `expired: unpaid after 60m`."""
    return f"expired: unpaid after {format_duration(ttl)}"
