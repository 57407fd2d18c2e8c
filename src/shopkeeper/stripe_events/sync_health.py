"""What `shopkeeper status` and /metrics say about the missed-webhooks listing (missed): its line,
and its counts. Read from the listings' own rows (a few an hour), never from the events table."""

from __future__ import annotations

from django.db.models import Sum
from django.utils import timezone

from shopkeeper.stripe_events.models import EventSync


def _last_finished() -> EventSync | None:
    return EventSync.objects.filter(finished_at__isnull=False).order_by("-started_at").first()


def describe_last_sync() -> str:
    """`last 2026-12-02 03:07 UTC (schedule): 41 listed, 2 stored`, and a failure after it."""
    finished = _last_finished()
    if finished is None:
        line = "never (the worker lists Stripe's events every hour)"
    else:
        line = (
            f"last {finished.started_at:%Y-%m-%d %H:%M} UTC ({finished.trigger}): "
            f"{finished.listed} listed, {finished.stored} stored"
        )
    failed = EventSync.objects.exclude(error="")
    if finished is not None:
        failed = failed.filter(started_at__gt=finished.started_at)
    failure = failed.order_by("-started_at").first()
    if failure is not None:
        line += f"; FAILED {failure.started_at:%Y-%m-%d %H:%M} UTC: {failure.error[:200]}"
    return line


def events_stored_by_sync() -> int:
    """Every event a listing stored: webhooks we missed, since the first listing."""
    return int(EventSync.objects.aggregate(total=Sum("stored"))["total"] or 0)


def last_sync_stored() -> int:
    finished = _last_finished()
    if finished is None:
        raise LookupError("no listing has finished")  # left out of the counts
    return finished.stored


def seconds_since_last_sync() -> float:
    finished = _last_finished()
    if finished is None or finished.finished_at is None:
        raise LookupError("no listing has finished")
    return (timezone.now() - finished.finished_at).total_seconds()
