"""The Stripe events payments handles, and the shape of a feature's table of them.

Each feature that owns data Stripe reports on (payments, refunds, disputes) keeps a table
`{event type: handler}` in its `events` module; `stripe_events.dispatch` joins them into the
one table the webhook and replay use. A reader runs before the event's transaction (Stripe is
never called under row locks) and returns the event with what the handler needs read.
"""

from __future__ import annotations

from collections.abc import Callable

from shopkeeper.payments.gateway import GatewayEvent
from shopkeeper.payments.services import apply_intent

Handler = Callable[[GatewayEvent], None]
Reader = Callable[[GatewayEvent], GatewayEvent]


def apply_intent_event(event: GatewayEvent) -> None:
    if event.intent is None:
        raise ValueError(f"{event.type} carries no PaymentIntent")
    apply_intent(event.intent, source="webhook")


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": apply_intent_event,
    "payment_intent.amount_capturable_updated": apply_intent_event,
    "payment_intent.payment_failed": apply_intent_event,
    "payment_intent.canceled": apply_intent_event,
}
READERS: dict[str, Reader] = {}
