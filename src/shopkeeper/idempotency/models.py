from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


def lease_end() -> datetime:
    """When a claim made now lapses, unless its request finished first."""
    return timezone.now() + timedelta(seconds=settings.SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS)


class IdempotencyRecord(models.Model):
    """One client's Idempotency-Key: the request it was first used for and the response given.

    Keys belong to the user who sent them. The row is inserted (and committed) before the
    request runs, so a concurrent request with the same key finds it and waits for the answer.
    The claim is a lease: a request killed while holding it (kill -9, a power cut) leaves it
    in progress, and once `lease_expires_at` has passed the same key may take it over.
    """

    class State(models.TextChoices):
        IN_PROGRESS = "in_progress"
        COMPLETED = "completed"

    owner_id = models.BigIntegerField()
    key = models.CharField(max_length=255)
    # "POST /api/admin/orders/SK-1/refunds": where the key was first used.
    endpoint = models.CharField(max_length=300)
    # SHA-256 of the method, path and canonical JSON body.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=20, choices=State.choices, default=State.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_content_type = models.CharField(max_length=100, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    # The key of the row the request creates (a refund request: its refund's `key`), chosen
    # with the claim: once a row with it exists (committed with the row), the key answers from
    # that row's current state, never by running again.
    resource_key = models.UUIDField(default=uuid.uuid4)
    lease_expires_at = models.DateTimeField(default=lease_end)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.UniqueConstraint(fields=("owner_id", "key"), name="idempotency_key_once"),
        )

    def __str__(self) -> str:
        return f"{self.owner_id}:{self.key} {self.state}"
