"""Orders flagged for a person: Stripe contradicted our books, or reported money our rules will
not book (a capture after a void, refunds above what was captured). Nothing is recorded into an
impossible ledger; instead the order carries an open `Attention` with a code and what happened,
shown on the order page, in the orders list (`needs_attention`), in the API and by `reconcile`
(exit 1 while one stands), until a person resolves it. Every flag and resolution is audited.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.services import record_for_order
from shopkeeper.errors import Conflict, InvalidInput
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.lookups import open_attention
from shopkeeper.orders.models import Attention, Order

logger = logging.getLogger(__name__)

# The reasons an order is flagged.
CAPTURE_AFTER_VOID = "capture_after_void"  # Stripe captured an authorisation we recorded void
VOID_AFTER_CAPTURE = "void_after_capture"  # Stripe voided an authorisation we recorded captured
STRIPE_CONTRADICTS = "stripe_contradicts"  # Stripe's final status differs from our final one
REFUND_EXCEEDS_CAPTURED = "refund_exceeds_captured"  # refunds + disputes would pass captured
PAYMENT_MISMATCH = "payment_mismatch"  # Stripe's amount, currency or order is not the order's
PAID_AFTER_CANCEL = "paid_after_cancel"  # money taken for a cancelled (or expired) order
# An authorisation past SHOPKEEPER_AUTH_EXPIRE_AFTER, not captured (orders.authorisations)
AUTHORIZATION_EXPIRING = "authorization_expiring"
# The capture after an order's last shipment (SHOPKEEPER_CAPTURE=on_fulfillment) was refused by
# Stripe or still failed after its last retry (fulfilment.jobs): goods left, money not taken.
CAPTURE_ON_FULFILLMENT_FAILED = "capture_on_fulfillment_failed"
MAX_DETAIL = 1000


class OrderNeedsAttention(Conflict):
    code = "order_needs_attention"
    title = "Stripe's answer contradicts this order's books; it is flagged for a person to look at"


def flag_order(
    order: Order,
    *,
    code: str,
    detail: str,
    subject: str = "",
    actor_label: str = "Shopkeeper",
    **details: Any,
) -> Attention | None:
    """Flag `order` (locked by the caller, in its transaction); None when already flagged so."""
    if Attention.objects.filter(
        order=order, code=code, subject=subject, resolved_at__isnull=True
    ).exists():
        return None
    attention = Attention.objects.create(
        order=order, code=code, subject=subject, detail=detail[:MAX_DETAIL]
    )
    if not order.needs_attention:
        order.needs_attention = True
        Order.objects.filter(pk=order.pk).update(needs_attention=True)
    record_for_order(
        order,
        action="order.attention_flagged",
        actor_label=actor_label,
        details={"code": code, "subject": subject, "detail": attention.detail, **details},
    )
    logger.error("Order %s needs a person: %s %s: %s", order.number, code, subject, detail)
    return attention


def resolve_attention(*, order_number: str, actor: Actor | None, note: str) -> int:
    """A person has looked: the order's open flags are closed with their note. How many."""
    note = (note or "").strip()
    if not note:
        raise InvalidInput("Say what was done about it")
    with transaction.atomic():
        order = lock_order(number=order_number)
        open_flags = list(open_attention(order))
        now = timezone.now()
        for attention in open_flags:
            attention.resolved_at, attention.resolution = now, note[:MAX_DETAIL]
            attention.resolved_by = actor if actor is not None and actor.pk else None
            attention.save(update_fields=["resolved_at", "resolution", "resolved_by"])
        if open_flags or order.needs_attention:
            order.needs_attention = False
            Order.objects.filter(pk=order.pk).update(needs_attention=False)
        if open_flags:
            record_for_order(
                order,
                action="order.attention_resolved",
                actor=actor,
                actor_label="" if actor else "Command line",
                details={"codes": [a.code for a in open_flags], "note": note[:MAX_DETAIL]},
            )
    return len(open_flags)


def resolve_flag(
    order: Order, *, code: str, subject: str, note: str, actor_label: str = "Shopkeeper"
) -> bool:
    """Close the locked `order`'s open flag `code` about `subject`, when what it was about is
    settled by itself (a late payment given back); False when no such flag is open."""
    attention = Attention.objects.filter(
        order=order, code=code, subject=subject, resolved_at__isnull=True
    ).first()
    if attention is None:
        return False
    attention.resolved_at, attention.resolution = timezone.now(), note[:MAX_DETAIL]
    attention.save(update_fields=["resolved_at", "resolution"])
    if not open_attention(order).exists():
        order.needs_attention = False
        Order.objects.filter(pk=order.pk).update(needs_attention=False)
    record_for_order(
        order,
        action="order.attention_resolved",
        actor_label=actor_label,
        details={"codes": [code], "subject": subject, "note": attention.resolution},
    )
    return True
