"""The order state machine: a pure table and named guards, no Django, no Stripe.

Statuses are data: a table lists the allowed moves and `move_*` refuses any other with
`IllegalTransition`. Staying in the same status is not a move and is always allowed, so that
replayed webhooks and retried requests are no-ops. See docs/state-machine.md.
"""

from __future__ import annotations

from enum import StrEnum

from shopkeeper.transitions import StateMachine


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


_MACHINE = StateMachine(OrderStatus, ORDER_TRANSITIONS, kind="order")
can_move_order = _MACHINE.can_move
move_order = _MACHINE.move
