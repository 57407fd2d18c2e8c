from __future__ import annotations

from django.db import models
from django.utils import timezone


class WebhookEvent(models.Model):
    """A Stripe event, stored under its unique id in the same transaction as its effects."""

    class Status(models.TextChoices):
        PROCESSED = "processed"
        IGNORED = "ignored"
        FAILED = "failed"

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    status = models.CharField(max_length=20, choices=Status.choices)
    payload = models.JSONField()
    error = models.TextField(blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-id",)
        # The table the payments app created: the model moved here, its rows did not.
        db_table = "payments_webhookevent"

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
