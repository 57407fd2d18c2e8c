from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookEvent(models.Model):
    """A Stripe event, stored under its unique id when it arrives; processed later by a job.

    `received`: its processing is deferred (or being retried: `attempts` failed tries so far,
    the last one's `error`); `processed` or `ignored` (a type we do not handle) in the same
    transaction as its effects; `failed` after its last try. `source`: how it reached us, a
    webhook delivery or the Events API (a webhook we missed, found by `webhooks sync`).
    """

    class Source(models.TextChoices):
        WEBHOOK = "webhook"
        EVENTS_API = "events_api"

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices)
    payload = models.JSONField()
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)
    # A database default: receiving's INSERT names only the columns it sets.
    source = models.CharField(
        max_length=20, choices=Source.choices, default=Source.WEBHOOK, db_default=Source.WEBHOOK
    )

    class Meta:
        ordering = ("-id",)
        # The table the payments app created: the model moved here, its rows did not.
        db_table = "payments_webhookevent"

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"


class EventSync(models.Model):
    """One listing of Stripe's Events API for the webhooks we missed (`missed.sync_missed_events`).

    It covered the events created from `since` to `started_at`; `finished_at` is empty while it
    runs (or when it died), `error` says why it stopped. The periodic job starts from the last
    scheduled listing that finished, so a worker that was down misses nothing.
    """

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        COMMAND = "command"

    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    since = models.DateTimeField()
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    listed = models.PositiveIntegerField(default=0)
    already_stored = models.PositiveIntegerField(default=0)
    stored = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ("-id",)
        indexes = [
            models.Index(fields=["trigger", "-started_at"], name="eventsync_trigger_started")
        ]

    def __str__(self) -> str:
        return f"{self.trigger} sync since {self.since:%Y-%m-%d %H:%M}"
