from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from shopkeeper.money import Money
from shopkeeper.orders.states import OrderStatus, PaymentStatus


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
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = (
            models.Index(fields=("-created_at", "-id"), name="order_keyset_idx"),
            models.Index(fields=("status",), name="order_status_idx"),
            models.Index(fields=("payment_status",), name="order_payment_status_idx"),
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
