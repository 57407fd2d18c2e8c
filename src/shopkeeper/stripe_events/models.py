from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookEvent(models.Model):
    """A Stripe event, stored under its unique id when it arrives; processed later by a job.

    `received`: its processing is deferred (or being retried: `attempts` failed tries so far,
    the last one's `error`); `processed` or `ignored` (a type we do not handle) in the same
    transaction as its effects; `failed` after its last try.
    """

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

    class Meta:
        ordering = ("-id",)
        # The table the payments app created: the model moved here, its rows did not.
        db_table = "payments_webhookevent"

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
