"""Refund requests and their lines. A refund row is state; the money is on the payment ledger.

A `Refund` is created (locked against its order) before Stripe is called, so the row exists
before the money moves and its `key` is the idempotency key Stripe sees on every attempt.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from shopkeeper.money import Money
from shopkeeper.refunds.rules import RefundStatus


class Refund(models.Model):
    class Source(models.TextChoices):
        SHOPKEEPER = "shopkeeper"  # asked for here
        STRIPE = "stripe"  # made elsewhere (Stripe dashboard) and learned from a webhook

    # Unique across databases, so a reset database never replays an old Stripe idempotency key.
    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(
        "payments.Payment", on_delete=models.PROTECT, related_name="refunds"
    )
    status = models.CharField(max_length=20, choices=[(s.value, s.value) for s in RefundStatus])
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    reason = models.CharField(max_length=30)
    note = models.TextField(blank=True)
    include_shipping = models.BooleanField(default=False)
    # Whether its success mails the customer (notifications): the dialog's "Notify the customer".
    # A database default too, for rows written by COPY (demo.bulk).
    notify_customer = models.BooleanField(default=True, db_default=True)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SHOPKEEPER)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # Who approved or rejected it, when it needed approval.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    stripe_refund_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    failure_message = models.CharField(max_length=500, blank=True)
    # Calls made to Stripe to create it; more than one means an earlier answer was lost.
    attempts = models.PositiveIntegerField(default=0)
    # When it was last sent to Stripe. Until the in-flight window after it has passed
    # (SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS) that send may still be queued at Stripe, and no
    # process sends the refund again.
    last_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("id",)
        indexes = (
            models.Index(fields=("order", "status"), name="refund_order_status_idx"),
            # The approval queue on every list page: one status, newest first.
            models.Index(fields=("status", "-id"), name="refund_status_newest_idx"),
            # The daily refund limit (every refund, and the order page's refund dialog): what
            # one person refunded in a currency within 24 hours, a range instead of all their
            # refunds (27,000 of them for the seeded owner: 42 ms).
            models.Index(
                fields=("requested_by", "currency", "created_at"),
                name="refund_requester_recent_idx",
            ),
        )
        constraints = (
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive"),
        )

    def __str__(self) -> str:
        return f"refund {self.pk} {self.status} {self.money}"

    @property
    def money(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def idempotency_key(self) -> str:
        return f"refund-{self.key}"


class RefundLine(models.Model):
    refund = models.ForeignKey(Refund, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        "orders.OrderLine", on_delete=models.PROTECT, related_name="refund_lines"
    )
    quantity = models.PositiveIntegerField()
    restock = models.BooleanField(default=False)
    amount_minor = models.BigIntegerField()

    class Meta:
        ordering = ("id",)
        constraints = (
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="refund_line_quantity_positive"
            ),
            models.UniqueConstraint(fields=("refund", "order_line"), name="refund_line_once"),
        )

    def __str__(self) -> str:
        return f"{self.quantity} x line {self.order_line_id}"
