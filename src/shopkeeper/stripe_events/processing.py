"""Processing a stored Stripe event: the job the webhook deferred (jobs.process_event).

An event is processed once: under its row's lock its status must still be `received`, and the
status moves to processed (or ignored: a type we do not handle) in the same transaction as the
handler's effects. A handler that fails rolls its effects back and counts the try on the row
(`attempts`, `error`); the job is retried later, and the try that is the last leaves the event
`failed` (`shopkeeper webhooks replay` receives it again).

Stripe delivers at least once and in any order; every handler applies only forward moves
(payments: `services.is_stale`; refunds: the refund transition table; disputes: the dispute
rules), so late news never overwrites newer state, whatever order the jobs run in. Refund news
is applied together with Stripe's current list of the payment's refunds, read before the
transaction (Stripe is never called under row locks). Jobs about one PaymentIntent run one at a
time (job_lock).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone

from shopkeeper import failpoints
from shopkeeper.payments.provider import get_gateway
from shopkeeper.stripe_events.dispatch import HANDLERS, READERS
from shopkeeper.stripe_events.models import WebhookEvent

logger = logging.getLogger(__name__)


def process_stored_event(event_id: str, *, tries: int) -> WebhookEvent.Status | None:
    """Handle the stored event `event_id` if it still waits; its new status (None: it did not
    wait: processed, ignored or failed already, or unknown). A failure is counted and raised."""
    stored = WebhookEvent.objects.filter(event_id=event_id).only("pk", "status", "payload").first()
    if stored is None or stored.status != WebhookEvent.Status.RECEIVED:
        return None
    try:
        return _handle(stored)
    except Exception as error:
        _count_failure(stored.pk, error, tries=tries)
        raise


def _handle(stored: WebhookEvent) -> WebhookEvent.Status:
    event = get_gateway().event_from_payload(stored.payload)
    handler = HANDLERS.get(event.type)
    read = READERS.get(event.type)
    if handler is not None and read is not None:
        event = read(event)
    with transaction.atomic():
        locked = WebhookEvent.objects.select_for_update().only("pk", "status").get(pk=stored.pk)
        if locked.status != WebhookEvent.Status.RECEIVED:
            return WebhookEvent.Status(locked.status)  # another run did it meanwhile
        if handler is not None:
            handler(event)
        status = WebhookEvent.Status.PROCESSED if handler else WebhookEvent.Status.IGNORED
        WebhookEvent.objects.filter(pk=stored.pk).update(
            status=status, error="", processed_at=timezone.now(), attempts=F("attempts") + 1
        )
    failpoints.hit("webhook.after_commit")  # tests: the worker dies before its job is finished
    return status


def _count_failure(pk: int, error: Exception, *, tries: int) -> None:
    logger.warning("Stripe event %s failed (%s: %s)", pk, type(error).__name__, error)
    WebhookEvent.objects.filter(pk=pk, status=WebhookEvent.Status.RECEIVED).update(
        attempts=F("attempts") + 1,
        error=f"{type(error).__name__}: {error}"[:2000],
        status=Case(
            When(attempts__gte=tries - 1, then=Value(WebhookEvent.Status.FAILED)),
            default=F("status"),
        ),
    )
