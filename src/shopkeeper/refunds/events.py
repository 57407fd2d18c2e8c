"""The Stripe events refunds handles (ours or made in the Stripe dashboard): see settlement."""

from __future__ import annotations

from shopkeeper.payments.events import Handler, Reader
from shopkeeper.refunds.settlement import settle_refund_news, with_refunds_from_stripe

_TYPES = (
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
    "charge.refunded",
)
HANDLERS: dict[str, Handler] = dict.fromkeys(_TYPES, settle_refund_news)
# Refund news is applied with Stripe's current list of the payment's refunds.
READERS: dict[str, Reader] = dict.fromkeys(_TYPES, with_refunds_from_stripe)
