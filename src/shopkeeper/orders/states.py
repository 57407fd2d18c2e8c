"""The order state machine and the order rules that read the payment's: pure, no Django, no Stripe.

Statuses are data: a table lists the allowed moves and `move_*` refuses any other with
`IllegalTransition`. Staying in the same status is not a move and is always allowed, so that
replayed webhooks and retried requests are no-ops. See docs/state-machine.md.
"""

from __future__ import annotations

from enum import StrEnum

from shopkeeper.errors import Conflict, IllegalTransition
from shopkeeper.payments.states import CAPTURED_STATUSES, PaymentStatus


class OrderStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    CANCELLED = "cancelled"
    CLOSED = "closed"


ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PROCESSING, OrderStatus.CANCELLED}),
    OrderStatus.PROCESSING: frozenset({OrderStatus.CLOSED, OrderStatus.CANCELLED}),
    OrderStatus.CLOSED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}


def can_move_order(current: OrderStatus | str, target: OrderStatus | str) -> bool:
    current, target = OrderStatus(current), OrderStatus(target)
    return current == target or target in ORDER_TRANSITIONS[current]


def move_order(current: OrderStatus | str, target: OrderStatus | str) -> OrderStatus:
    current, target = OrderStatus(current), OrderStatus(target)
    if not can_move_order(current, target):
        raise IllegalTransition(
            f"An order cannot move from {current} to {target}",
            kind="order",
            current=str(current),
            target=str(target),
        )
    return target


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
