"""Features that follow a refund's outcome register here (returns: a return is `refunded` when
its refund succeeds). Listeners run in the transaction that settles the refund, with the order
and the refund locked, after the refund's status, ledger row and audit entry are written."""

from __future__ import annotations

from collections.abc import Callable

from shopkeeper.orders.models import Order
from shopkeeper.refunds.models import Refund

Listener = Callable[[Order, Refund], None]
_LISTENERS: list[Listener] = []


def on_refund_settled(listener: Listener) -> None:
    """Call `listener(order, refund)` whenever a refund moves to a new status (once each)."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def refund_settled(order: Order, refund: Refund) -> None:
    for listener in _LISTENERS:
        listener(order, refund)
