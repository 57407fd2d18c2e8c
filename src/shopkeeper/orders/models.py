from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from shopkeeper.money import Money
from shopkeeper.orders.states import OrderStatus
from shopkeeper.payments.states import PaymentStatus


class Order(models.Model):
    number = models.CharField(max_length=20, unique=True)
    email = models.EmailField()
    status = models.CharField(
        max_length=20,
        choices=[(s.value, s.value) for s in OrderStatus],
        default=OrderStatus.PENDING,
    )
    payment_status = models.CharField(
        max_length=20,
        choices=[(s.value, s.value) for s in PaymentStatus],
        default=PaymentStatus.PENDING,
    )
    currency = models.CharField(max_length=3)
    subtotal_minor = models.BigIntegerField()
    shipping_minor = models.BigIntegerField()
    grand_total_minor = models.BigIntegerField()
    shipping_address = models.JSONField(default=dict)
    cancel_reason = models.CharField(max_length=500, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    # The capture or cancel under way at Stripe, if any (orders.operations): claimed under the
    # order's lock before Stripe is called, released when its answer is recorded.
    operation = models.CharField(max_length=20, blank=True)
    operation_key = models.CharField(max_length=255, blank=True)
    operation_started_at = models.DateTimeField(null=True, blank=True)
    # Whether the order has an open flag (Attention): kept by orders.attention under the
    # order's lock, in the transaction that opens or closes the flags, so the list's "needs a
    # person" pages read a small partial index instead of testing every order for a flag.
    needs_attention = models.BooleanField(default=False)
    # When its first shipment left (fulfilment.services.ship_order, under the order's lock):
    # an order that never shipped cannot close, so the money's changes (a refund, a capture, a
    # dispute's end) learn that from the row they have locked, at no statement's cost.
    shipped_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        # The list's pages, newest first, whatever the filters: each filter's own keyset index
        # (its equality columns, then the order), so a page deep in the list is one index range.
        # Search: `number` is unique, `lower(email)` is the whole e-mail; parts of the number,
        # e-mail and name use trigram indexes where pg_trgm exists (migrations/0004).
        indexes = (
            models.Index(fields=("-created_at", "-id"), name="order_keyset_idx"),
            models.Index(fields=("status", "-created_at", "-id"), name="order_status_keyset_idx"),
            models.Index(
                fields=("payment_status", "-created_at", "-id"), name="order_payment_keyset_idx"
            ),
            models.Index(
                fields=("status", "payment_status", "-created_at", "-id"),
                name="order_both_status_keyset_idx",
            ),
            models.Index(Lower("email"), name="order_email_lower_idx"),
            models.Index(
                fields=("-created_at", "-id"),
                condition=Q(needs_attention=True),
                name="order_attention_keyset_idx",
            ),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(
                    grand_total_minor=models.F("subtotal_minor") + models.F("shipping_minor")
                ),
                name="order_total_is_subtotal_plus_shipping",
            ),
        )

    def __str__(self) -> str:
        return self.number

    @property
    def grand_total(self) -> Money:
        return Money(self.grand_total_minor, self.currency)

    @property
    def shipping(self) -> Money:
        return Money(self.shipping_minor, self.currency)

    @property
    def subtotal(self) -> Money:
        return Money(self.subtotal_minor, self.currency)


class Attention(models.Model):
    """Something about an order that a person must look at: Stripe contradicted our books, or
    reported money our rules cannot book. Open until a person resolves it."""

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="attention")
    code = models.CharField(max_length=50)
    # What it is about (a PaymentIntent, a Stripe refund id): one open flag per code and subject.
    subject = models.CharField(max_length=255, blank=True)
    detail = models.CharField(max_length=1000)
    created_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    resolution = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.UniqueConstraint(
                fields=("order", "code", "subject"),
                condition=Q(resolved_at__isnull=True),
                name="attention_open_once",
            ),
        )

    def __str__(self) -> str:
        return f"{self.order_id} {self.code} {self.subject}"


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        "catalog.Product", on_delete=models.SET_NULL, null=True, related_name="order_lines"
    )
    # Snapshots at the time of purchase: later catalog changes do not alter the order.
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    unit_price_minor = models.BigIntegerField()
    quantity = models.PositiveIntegerField()
    line_total_minor = models.BigIntegerField()
    # Units of reserved stock already given back (by cancellation or a restocking refund).
    restocked_quantity = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="order_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(restocked_quantity__lte=models.F("quantity")),
                name="order_line_restock_within_quantity",
            ),
        )

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"
