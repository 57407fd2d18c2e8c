from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from shopkeeper.fulfilment.states import ShipmentStatus


class Shipment(models.Model):
    """Units of an order's lines that left together, with the carrier's tracking number."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="shipments")
    status = models.CharField(
        max_length=20,
        choices=[(s.value, s.value) for s in ShipmentStatus],
        default=ShipmentStatus.SHIPPED,
    )
    carrier = models.CharField(max_length=100, blank=True)
    tracking_number = models.CharField(max_length=100, blank=True)
    shipped_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    shipped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"shipment {self.pk} of order {self.order_id}"


class ShipmentLine(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        "orders.OrderLine", on_delete=models.PROTECT, related_name="shipment_lines"
    )
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ("id",)
        constraints = (
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="shipment_line_quantity_positive"
            ),
            models.UniqueConstraint(
                fields=("shipment", "order_line"), name="shipment_line_once_per_shipment"
            ),
        )

    def __str__(self) -> str:
        return f"{self.quantity} of line {self.order_line_id}"
