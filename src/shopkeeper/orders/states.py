"""The order state machine: a pure table and named guards, no Django, no Stripe.

Statuses are data: a table lists the allowed moves and `move_*` refuses any other with
`IllegalTransition`. Staying in the same status is not a move and is always allowed, so that
replayed webhooks and retried requests are no-ops. See docs/state-machine.md.
"""

from __future__ import annotations

from enum import StrEnum

from shopkeeper.errors import IllegalTransition


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
