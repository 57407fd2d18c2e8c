"""Disputes (chargebacks) of an order's payment. A dispute row is state; the money held back or
lost is on the payment ledger (`dispute` and `dispute_closed` entries)."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from shopkeeper.disputes.rules import DisputeOutcome
from shopkeeper.money import Money
from shopkeeper.payments.stripe_statuses import DisputeStatus


class Dispute(models.Model):
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="disputes")
    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="disputes"
    )
    stripe_dispute_id = models.CharField(max_length=255, unique=True)
    stripe_charge_id = models.CharField(max_length=255, blank=True)
    # Stripe's status as last applied, and what it means for the money.
    status = models.CharField(max_length=30, choices=[(s.value, s.value) for s in DisputeStatus])
    outcome = models.CharField(max_length=20, choices=[(o.value, o.value) for o in DisputeOutcome])
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    # The cardholder's reason as Stripe reports it (fraudulent, product_not_received, ...).
    reason = models.CharField(max_length=50, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = (models.Index(fields=("order", "outcome"), name="dispute_order_outcome_idx"),)
        constraints = (
            models.CheckConstraint(
                condition=Q(amount_minor__gte=0), name="dispute_amount_not_negative"
            ),
        )

    def __str__(self) -> str:
        return f"dispute {self.stripe_dispute_id} {self.status} {self.money}"

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)
