"""The one table `{event type: handler}`: every feature's Stripe event handlers, joined.

A new Stripe event gets a handler in the feature that owns the data, in that feature's
`events.HANDLERS` (and `READERS` when it needs Stripe read before its transaction). A type
claimed by two features is refused at import, so no event is handled twice or by chance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from shopkeeper.disputes import events as disputes
from shopkeeper.payments import events as payments
from shopkeeper.payments.events import Handler, Reader
from shopkeeper.refunds import events as refunds

T = TypeVar("T")


def one_table(*tables: Mapping[str, T]) -> dict[str, T]:
    joined: dict[str, T] = {}
    for table in tables:
        if claimed := joined.keys() & table.keys():
            raise RuntimeError(f"Stripe event types handled twice: {sorted(claimed)}")
        joined.update(table)
    return joined


HANDLERS: dict[str, Handler] = one_table(payments.HANDLERS, refunds.HANDLERS, disputes.HANDLERS)
READERS: dict[str, Reader] = one_table(payments.READERS, refunds.READERS, disputes.READERS)
