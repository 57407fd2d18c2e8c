"""Missed webhooks, found: Stripe's Events API listed, and every event we have not stored stored
and processed as if its webhook had come (`shopkeeper webhooks sync`, and hourly by the worker).

Stripe delivers a webhook for up to 3 days, then gives up; a server that answered 500, a
deploy at the wrong second or an endpoint left out of Stripe's settings lose events for good.
Stripe keeps 30 days of them in the Events API. Each listed event we do not have goes through
`receiving.receive_missed_event`, the webhook's own statements: the same row (`source`
`events_api`), the same job, and, racing a late delivery of it, still one row and one job (its
unique id). Only the types the dispatch table handles are listed.

Each listing is kept (`EventSync`: its window, its counts, its error), and audited under the
actor who ran it when it stored any (`webhooks.sync`). The scheduled one reaches back to where
the last scheduled listing that finished began, so a worker that was down misses nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from shopkeeper.audit.services import record
from shopkeeper.payments.gateway import GatewayEvent
from shopkeeper.payments.provider import get_gateway
from shopkeeper.stripe_events.dispatch import HANDLERS
from shopkeeper.stripe_events.models import EventSync, WebhookEvent
from shopkeeper.stripe_events.receiving import receive_missed_event

# Stripe's Events API reaches back this far.
STRIPE_KEEPS_EVENTS = timedelta(days=30)
# A scheduled listing starts this much before the last one began: an event Stripe made just
# before that listing may have been listed by Stripe a moment later.
OVERLAP = timedelta(minutes=10)


@dataclass(frozen=True)
class SyncCounts:
    """Listed: events of our types Stripe has since then; already stored: those we had (by a
    webhook, an earlier listing, or a delivery racing this one); stored now: those we had not."""

    listed: int = 0
    already_stored: int = 0
    stored: int = 0


Progress = Callable[[SyncCounts], None]


def sync_missed_events(
    *,
    since: datetime,
    trigger: EventSync.Trigger = EventSync.Trigger.COMMAND,
    actor_label: str,
    progress: Progress | None = None,
) -> SyncCounts:
    """Store and defer every event of a handled type created at or after `since` that we have
    not stored; the counts. Each event is stored in its own transaction, like a delivery (no
    transaction is open while Stripe is listed); a listing that fails keeps its error and what
    it stored, and raises."""
    run = EventSync.objects.create(trigger=trigger, since=since, started_at=timezone.now())
    counts = SyncCounts()
    try:
        pages = get_gateway().list_events(
            created_gte=int(since.timestamp()), types=sorted(HANDLERS)
        )
        for page in pages:
            counts = _store_missing(page, counts)
            if progress is not None:
                progress(counts)
    except Exception as error:
        EventSync.objects.filter(pk=run.pk).update(
            error=f"{type(error).__name__}: {error}"[:2000], **asdict(counts)
        )
        raise
    _finish(run, counts, actor_label=actor_label)
    return counts


def _store_missing(page: Sequence[GatewayEvent], counts: SyncCounts) -> SyncCounts:
    """One page: one read for the ids we have, then each missing event stored."""
    ids = [event.id for event in page]
    known = set(WebhookEvent.objects.filter(event_id__in=ids).values_list("event_id", flat=True))
    stored = sum(1 for event in page if event.id not in known and receive_missed_event(event))
    return SyncCounts(
        listed=counts.listed + len(page),
        already_stored=counts.already_stored + len(page) - stored,
        stored=counts.stored + stored,
    )


def _finish(run: EventSync, counts: SyncCounts, *, actor_label: str) -> None:
    with transaction.atomic():
        EventSync.objects.filter(pk=run.pk).update(finished_at=timezone.now(), **asdict(counts))
        if counts.stored:
            record(
                action="webhooks.sync",
                target_type="webhooks_sync",
                target_id=run.pk,
                target_label=f"Stripe events since {run.since:%Y-%m-%d %H:%M} UTC",
                actor=None,
                actor_label=actor_label,
                details={**asdict(counts), "since": run.since.isoformat(), "trigger": run.trigger},
            )


def scheduled_since(now: datetime) -> datetime:
    """Where the scheduled listing starts: SHOPKEEPER_EVENTS_SYNC_HOURS ago, or further back
    where the last scheduled listing that finished began (less OVERLAP), never beyond what
    Stripe keeps. A listing that failed covered nothing: the next one starts before it."""
    window = now - timedelta(hours=settings.SHOPKEEPER_EVENTS_SYNC_HOURS)
    last = (
        EventSync.objects.filter(trigger=EventSync.Trigger.SCHEDULE, finished_at__isnull=False)
        .order_by("-started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    since = window if last is None else min(window, last - OVERLAP)
    return max(since, now - STRIPE_KEEPS_EVENTS)


def last_sync() -> EventSync | None:
    """The latest listing, finished or not."""
    return EventSync.objects.order_by("-started_at", "-id").first()
