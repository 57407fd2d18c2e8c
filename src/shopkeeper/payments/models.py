from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from shopkeeper.payments.ledger import EntryKind
from shopkeeper.payments.stripe_statuses import IntentStatus


class Payment(models.Model):
    """One Stripe PaymentIntent taken for an order."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="payments")
    intent_id = models.CharField(max_length=255, unique=True)
    client_secret = models.CharField(max_length=255)
    capture_method = models.CharField(max_length=20)
    # SHOPKEEPER_CAPTURE=on_fulfillment when this payment was started (payments.capture_modes):
    # captured by the worker once the order is fully shipped. Kept here, so a later change of
    # the setting leaves the orders placed before it as they were.
    capture_on_fulfillment = models.BooleanField(default=False, db_default=False)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # Stripe's own PaymentIntent status, as last seen.
    intent_status = models.CharField(max_length=40)
    charge_id = models.CharField(max_length=255, blank=True)
    card_brand = models.CharField(max_length=30, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    # Set when Stripe reports an amount or currency that does not match the order.
    flagged = models.BooleanField(default=False)
    flag_reason = models.CharField(max_length=500, blank=True)
    # When the card was authorised (Stripe's charge time, else when we recorded the
    # authorisation): an uncaptured authorisation lapses counting from it (orders.authorisations).
    authorized_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)
        # `reconcile --since` finds the payments created in its window without a scan; the
        # authorisations still open, oldest first, are a small partial index (the lapse job,
        # the list's `authorization_expiring` filter, the dashboard's count).
        indexes = (
            models.Index(fields=("created_at",), name="payment_created_at_idx"),
            models.Index(
                fields=("authorized_at",),
                condition=Q(intent_status=IntentStatus.REQUIRES_CAPTURE),
                name="payment_open_authorisation_idx",
            ),
        )

    def __str__(self) -> str:
        return self.intent_id


class LedgerEntry(models.Model):
    """One money movement. Append-only: rows are never updated or deleted."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="ledger")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="ledger")
    kind = models.CharField(max_length=20, choices=[(k.value, k.value) for k in EntryKind])
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # What makes this movement unique at Stripe (a refund id, "pi_…:capture"): a replayed
    # webhook or a retried request can never record the same movement twice.
    external_id = models.CharField(max_length=255)
    stripe_payment_intent_id = models.CharField(max_length=255, blank=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True)
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    stripe_dispute_id = models.CharField(max_length=255, blank=True)
    # Who caused it: "shopkeeper" (our own request), "stripe" (learned from Stripe: webhook,
    # return page, reconciliation).
    source = models.CharField(max_length=20, default="shopkeeper")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.UniqueConstraint(fields=("kind", "external_id"), name="ledger_movement_once"),
            models.CheckConstraint(
                condition=Q(amount_minor__gte=0), name="ledger_amount_not_negative"
            ),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.amount_minor} {self.currency}"


class StripeRateBucket(models.Model):
    """One budget of Stripe requests shared by every process (payments/stripe/rate_limit.py).

    `theoretical_arrival` is the GCRA's clock: the bucket lets a request go at the database's
    `clock_timestamp()` once it is no earlier than this minus the burst tolerance. Only
    `stripe_rate_reserve` (migration 0004) and `StripeRateLimiter.hold` write it. The counters
    are cluster-wide totals since the row was made: /metrics reads them.
    """

    name = models.CharField(max_length=200, primary_key=True)
    theoretical_arrival = models.DateTimeField()
    requests = models.BigIntegerField(default=0)
    waits = models.BigIntegerField(default=0)
    wait_seconds = models.FloatField(default=0.0)
    rate_limited = models.BigIntegerField(default=0)

    class Meta:
        db_table = "payments_stripe_rate_bucket"

    def __str__(self) -> str:
        return self.name
