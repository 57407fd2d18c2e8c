"""The Stripe events disputes handles: the disputed money is held back while open, released
if won, gone if lost."""

from __future__ import annotations

from shopkeeper.disputes.services import record_dispute_event, with_intent_for_dispute
from shopkeeper.payments.events import Handler, Reader

_TYPES = ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
HANDLERS: dict[str, Handler] = dict.fromkeys(_TYPES, record_dispute_event)
# News of money going back that overtook the payment's own news brings the PaymentIntent.
READERS: dict[str, Reader] = dict.fromkeys(_TYPES, with_intent_for_dispute)
