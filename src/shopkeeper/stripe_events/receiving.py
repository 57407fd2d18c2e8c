"""Receiving a verified Stripe event: store it under its unique id and defer its processing,
in one transaction (then the webhook answers 200; processing runs in the worker: processing).

A duplicate delivery finds the id stored and changes nothing: one read, no write, no job. An event
stored as `failed` (every try failed) is received again by a redelivery or a replay: back to
`received`, its tries counted from zero, a new job. An event the webhook never brought, found in
Stripe's Events API (missed), is stored by the same statements, marked `events_api`.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, transaction
from django.db.backends.postgresql.psycopg_any import Jsonb
from django.utils import timezone

from shopkeeper.jobs.defer import defer_in_transaction
from shopkeeper.payments.gateway import GatewayEvent
from shopkeeper.stripe_events.job_lock import processing_lock
from shopkeeper.stripe_events.jobs import process_event
from shopkeeper.stripe_events.models import WebhookEvent

_TABLE = WebhookEvent._meta.db_table
_STATUS = f"SELECT status FROM {_TABLE} WHERE event_id = %s"
# A new event: its row, unless a concurrent delivery stored it first (then no row comes back).
_INSERT = f"""
INSERT INTO {_TABLE} (event_id, type, status, payload, error, attempts, received_at, source)
VALUES (%s, %s, 'received', %s, '', 0, %s, %s)
ON CONFLICT (event_id) DO NOTHING
RETURNING id
"""
# A failed event delivered again: back to received, unless another delivery did it first.
_REVIVE = f"""
UPDATE {_TABLE} SET status = 'received', attempts = 0, payload = %s
WHERE event_id = %s AND status = 'failed'
RETURNING id
"""


def receive_event(event: GatewayEvent) -> bool:
    """Store `event` and defer its processing; False: a duplicate (already stored).

    A duplicate is told by one read, outside any transaction: no row lock, no commit to wait
    for (a write, even `ON CONFLICT DO UPDATE ... WHERE` that updates nothing, locks the row
    and makes the commit wait for the WAL flush).
    """
    with connection.cursor() as cursor:  # the hot path: SQL, not the ORM's compiler
        cursor.execute(_STATUS, [event.id])
        row = cursor.fetchone()
    status = row[0] if row else None
    if status is not None and status != WebhookEvent.Status.FAILED:
        return False
    return _store(event, revive=status is not None, source=WebhookEvent.Source.WEBHOOK)


def receive_missed_event(event: GatewayEvent) -> bool:
    """Store an event that no webhook brought (listed by Stripe's Events API) and defer its
    processing, as `receive_event` does; False when it is stored already, by a delivery that
    won the race too. A stored failed event stays failed: replaying it is for a person."""
    return _store(event, revive=False, source=WebhookEvent.Source.EVENTS_API)


def _store(event: GatewayEvent, *, revive: bool, source: WebhookEvent.Source) -> bool:
    """The event's row (new, or a failed one back to `received`) and its job, in one
    transaction; False when a concurrent delivery stored (or revived) it first."""
    payload = Jsonb(dict(event.payload))
    with transaction.atomic(), connection.cursor() as cursor:
        if revive:
            cursor.execute(_REVIVE, [payload, event.id])
        else:
            cursor.execute(_INSERT, [event.id, event.type, payload, timezone.now(), source])
        if cursor.fetchone() is None:
            return False
        _defer_processing(event.id, event.payload)
    return True


def receive_failed_again(event_ids: Sequence[str] = ()) -> list[str]:
    """Put stored failed events (these, or all) back to `received` and defer their processing,
    oldest first; the ids deferred. Each in its own transaction, under its row's lock."""
    failed = WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED)
    if event_ids:
        failed = failed.filter(event_id__in=event_ids)
    deferred = []
    for pk in failed.order_by("received_at", "id").values_list("pk", flat=True):
        with transaction.atomic():
            event = (
                WebhookEvent.objects.select_for_update()
                .filter(pk=pk, status=WebhookEvent.Status.FAILED)
                .first()
            )
            if event is None:  # received again meanwhile (Stripe's redelivery)
                continue
            event.status, event.attempts = WebhookEvent.Status.RECEIVED, 0
            event.save(update_fields=["status", "attempts"])
            _defer_processing(event.event_id, event.payload)
        deferred.append(event.event_id)
    return deferred


def _defer_processing(event_id: str, payload: object) -> None:
    assert isinstance(payload, dict)
    defer_in_transaction(process_event, lock=processing_lock(payload), event_id=event_id)
