"""Stripe events, verified: de-duplicate by event id, dispatch by type, replay the failed.

The event row and its effects commit in one transaction, so a duplicate delivery finds the
row and changes nothing. A handler that fails leaves the event stored as failed (the view
answers 500 so Stripe retries ; `shopkeeper webhooks replay --failed` retries too).
Types we do not handle are stored as ignored and answered 200.

Stripe delivers at least once and in any order; every handler applies only forward moves
(payments: `services.is_stale`; refunds: the refund transition table; disputes: the dispute
rules), so late news never overwrites newer state. Refund news is applied together with
Stripe's current list of the payment's refunds, read before the transaction, so news about one
refund overtaking news about another cannot make the ledger disagree with Stripe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from shopkeeper.payments.events import Handler
from shopkeeper.payments.gateway import GatewayEvent, PaymentGateway
from shopkeeper.payments.provider import get_gateway
from shopkeeper.stripe_events.dispatch import HANDLERS, READERS
from shopkeeper.stripe_events.models import WebhookEvent

logger = logging.getLogger(__name__)


def process_event(event: GatewayEvent) -> WebhookEvent.Status | None:
    """Store and handle one verified event. None means it was already stored (a duplicate).

    An event stored as failed is handled again (a redelivery or a replay).
    """
    stored = WebhookEvent.objects.filter(event_id=event.id).only("pk", "status").first()
    if stored is not None and stored.status != WebhookEvent.Status.FAILED:
        return None
    handler = HANDLERS.get(event.type)
    read = READERS.get(event.type)
    if handler is not None and read is not None:
        event = read(event)
    if stored is not None:
        return _retry_failed(stored, event, handler)
    status = WebhookEvent.Status.PROCESSED if handler else WebhookEvent.Status.IGNORED
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                event_id=event.id,
                type=event.type,
                status=status,
                payload=dict(event.payload),
                processed_at=timezone.now(),
            )
            if handler is not None:
                handler(event)
    except IntegrityError:
        existing = WebhookEvent.objects.filter(event_id=event.id).first()
        if existing is None:
            raise  # the handler's own error, not a concurrent delivery
        if existing.status != WebhookEvent.Status.FAILED:
            return None
        return _retry_failed(existing, event, handler)
    return status


def _retry_failed(
    stored: WebhookEvent, event: GatewayEvent, handler: Handler | None
) -> WebhookEvent.Status:
    with transaction.atomic():
        locked = WebhookEvent.objects.select_for_update().get(pk=stored.pk)
        if locked.status != WebhookEvent.Status.FAILED:
            return WebhookEvent.Status(locked.status)
        if handler is not None:
            handler(event)
        locked.status = WebhookEvent.Status.PROCESSED if handler else WebhookEvent.Status.IGNORED
        locked.error, locked.processed_at = "", timezone.now()
        locked.save(update_fields=["status", "error", "processed_at"])
    return WebhookEvent.Status(locked.status)


def store_failure(
    event_id: str, event_type: str, payload: dict[str, Any], error: Exception
) -> None:
    """Keep the event (and why it failed) for Stripe's next delivery or a replay."""
    WebhookEvent.objects.update_or_create(
        event_id=event_id,
        defaults={
            "type": event_type,
            "status": WebhookEvent.Status.FAILED,
            "payload": payload,
            "error": f"{type(error).__name__}: {error}"[:2000],
        },
    )


@dataclass
class ReplayReport:
    processed: list[str] = field(default_factory=list)
    # (event id, error) of events that failed again.
    still_failing: list[tuple[str, str]] = field(default_factory=list)


def replay_failed_events(
    *, event_ids: Sequence[str] = (), gateway: PaymentGateway | None = None
) -> ReplayReport:
    """Handle stored failed events again from their stored payloads, oldest first.

    The payload was verified when it arrived. Each event goes through `process_event`, so a
    replay racing Stripe's own redelivery still applies the event once.
    """
    gateway = gateway or get_gateway()
    report = ReplayReport()
    failed = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)
    if event_ids:
        failed = failed.filter(event_id__in=event_ids)
    for stored in failed.order_by("received_at", "id"):
        try:
            process_event(gateway.event_from_payload(stored.payload))
        except Exception as error:
            logger.exception("Replaying Stripe event %s (%s) failed", stored.event_id, stored.type)
            store_failure(stored.event_id, stored.type, stored.payload, error)
            report.still_failing.append((stored.event_id, f"{type(error).__name__}: {error}"))
        else:
            report.processed.append(stored.event_id)
    return report
