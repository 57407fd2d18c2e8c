"""Owing a customer an e-mail: `notify`, called by the use cases in their own transaction.

It writes the outbox row and defers its job in that transaction, in one statement
(shopkeeper.jobs.defer.insert_and_defer), so a committed event always has its mail on the way
and a rolled-back one never sends any; an event that owes its mail already writes nothing.
"""

from __future__ import annotations

from typing import Any

from shopkeeper.jobs.defer import insert_and_defer
from shopkeeper.money import Money
from shopkeeper.notifications.jobs import send_email
from shopkeeper.notifications.kinds import Kind
from shopkeeper.notifications.models import Notification
from shopkeeper.orders.models import Order


def notify(order: Order, kind: Kind, *, event_key: str, **details: Any) -> bool:
    """Owe `order`'s customer the `kind` mail for the event `event_key`; False when owed
    already. `details` (JSON) is what the mail says beyond the order."""
    row = Notification(
        order=order, kind=kind, event_key=event_key, to_email=order.email, details=details
    )
    return insert_and_defer(
        row, ("order_id", "kind", "event_key"), send_email, id_argument="notification_id"
    )


def money_details(amount: Money, *, card_brand: str = "", card_last4: str = "") -> dict[str, str]:
    """An amount with its currency, and the card it goes back to when known."""
    return {"amount": str(amount), "card_brand": card_brand, "card_last4": card_last4}
