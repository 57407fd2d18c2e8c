"""The webhook's deferred half: process a stored Stripe event (processing.process_stored_event).

Retried with exponential backoff (SHOPKEEPER_WEBHOOK_TRIES tries, the first retry after
SHOPKEEPER_WEBHOOK_RETRY_SECONDS, each next one 4 times later); the event is left `failed` only
by its last try, for `shopkeeper webhooks replay`.

Every hour, at minute 7: the webhooks we missed, found in Stripe's Events API (missed). Not
retried: the next hour's run starts where the last finished one began, so a failed or skipped
run (procrastinate defers no run more than 10 minutes late) leaves no gap.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from procrastinate.contrib.django import app

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.jobs.backoff import Backoff, exponential
from shopkeeper.stripe_events.models import EventSync
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


@app.periodic(cron="7 * * * *", periodic_id="hourly")
@app.task(
    name="stripe_events.sync_missed_events",
    queue="periodic",
    lock="webhooks.sync",
    queueing_lock="webhooks.sync",
)
def sync_missed_events(timestamp: int) -> None:
    # Here, not at the top: missed -> receiving -> this module (process_event).
    from shopkeeper.stripe_events import missed

    missed.sync_missed_events(
        since=missed.scheduled_since(timezone.now()),
        trigger=EventSync.Trigger.SCHEDULE,
        actor_label=SYSTEM,
    )
