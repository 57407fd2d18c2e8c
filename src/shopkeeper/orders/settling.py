"""Changes to an order's money that may end its life: a capture recorded, Stripe's news of a
payment applied, a dispute closed. Features above the money (fulfilment: closing the order)
register here in their app's ready(); the money code calls `money_moved` in its transaction,
with the order locked, after its ledger rows and audit entry are written."""

from __future__ import annotations

from collections.abc import Callable

from shopkeeper.orders.models import Order

Listener = Callable[[Order], None]
_LISTENERS: list[Listener] = []


def on_money_moved(listener: Listener) -> None:
    """Call `listener(order)` after each money change of an order."""
    if listener not in _LISTENERS:
        _LISTENERS.append(listener)


def money_moved(order: Order) -> None:
    for listener in _LISTENERS:
        listener(order)
