"""The kept report of every reconcile run: when, over what, what it found and fixed."""

from __future__ import annotations

from django.db import models


class RunSource(models.TextChoices):
    SCHEDULE = "schedule", "Nightly schedule"
    COMMAND = "command", "shopkeeper reconcile"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    OK = "ok", "No differences"
    DIFFERENCES = "differences", "Differences remain"
    FAILED = "failed", "Failed"


# A run that ended (its books compared with Stripe's): the next nightly window starts at it.
COMPLETED = (RunStatus.OK, RunStatus.DIFFERENCES)


class ReconcileRun(models.Model):
    """One run of `reconcile`, by the nightly job or the command, written as it starts and
    finished with its counts and findings (at most FINDINGS_KEPT; `findings_omitted` more)."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=RunSource.choices)
    since = models.DateTimeField(null=True, blank=True)  # None: every PaymentIntent
    order_number = models.CharField(max_length=64, blank=True)  # `--order` (as typed, cut)
    fix = models.BooleanField(default=False)  # whether it recorded what Stripe proves
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    checked = models.PositiveIntegerField(default=0)  # PaymentIntents compared
    differences = models.PositiveIntegerField(default=0)  # found, fixed or not
    fixed = models.PositiveIntegerField(default=0)
    stripe_requests = models.PositiveIntegerField(default=0)
    findings = models.JSONField(default=list)  # as `reconcile --json` prints "differences"
    findings_omitted = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)  # why it failed: what Stripe could not be asked

    class Meta:
        ordering = ["-id"]  # newest first: runs get their id as they start

    def __str__(self) -> str:
        return f"reconcile run {self.pk} ({self.source}, {self.status})"

    @property
    def remaining(self) -> int:
        return self.differences - self.fixed
