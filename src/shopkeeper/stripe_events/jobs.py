"""The webhook's deferred half: process a stored Stripe event (processing.process_stored_event).

Retried with exponential backoff (SHOPKEEPER_WEBHOOK_TRIES tries, the first retry after
SHOPKEEPER_WEBHOOK_RETRY_SECONDS, each next one 4 times later); the event is left `failed` only
by its last try, for `shopkeeper webhooks replay`.
"""

from __future__ import annotations

from django.conf import settings
from procrastinate.contrib.django import app

from shopkeeper.jobs.backoff import Backoff, exponential
from shopkeeper.stripe_events.processing import process_stored_event

RETRY = Backoff(
    exponential(
        first=settings.SHOPKEEPER_WEBHOOK_RETRY_SECONDS,
        factor=4,
        tries=settings.SHOPKEEPER_WEBHOOK_TRIES,
    )
)


@app.task(name="stripe_events.process_event", queue="webhooks", retry=RETRY)
def process_event(event_id: str) -> None:
    process_stored_event(event_id, tries=RETRY.tries)
