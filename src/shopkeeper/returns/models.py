from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from shopkeeper.returns.states import ReturnSource, ReturnStatus


class Return(models.Model):
    """Shipped units coming back: asked for, received (and restocked), refunded or rejected."""

    order = models.ForeignKey("orders.Order", on_delete=models.PROTECT, related_name="returns")
    status = models.CharField(
        max_length=20,
        choices=[(s.value, s.value) for s in ReturnStatus],
        default=ReturnStatus.REQUESTED,
    )
    source = models.CharField(max_length=20, choices=[(s.value, s.value) for s in ReturnSource])
    note = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    received_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    reject_note = models.TextField(blank=True)
    # The refund made for the received units (the latest; a failed one may be followed by another).
    refund = models.ForeignKey(
        "refunds.Refund", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Whether the customer hears "return refunded" when that refund succeeds (the refund
    # dialog's "Notify the customer"; kept with the link to the refund).
    notify_customer = models.BooleanField(default=True, db_default=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = (
            models.Index(fields=("-created_at", "-id"), name="return_keyset_idx"),
            models.Index(fields=("status", "-created_at", "-id"), name="return_status_keyset_idx"),
        )

    def __str__(self) -> str:
        return f"return {self.pk} of order {self.order_id}"


class ReturnLine(models.Model):
    return_request = models.ForeignKey(Return, on_delete=models.CASCADE, related_name="lines")
    order_line = models.ForeignKey(
        "orders.OrderLine", on_delete=models.PROTECT, related_name="return_lines"
    )
    quantity = models.PositiveIntegerField()
    reason = models.CharField(max_length=30)
    received_quantity = models.PositiveIntegerField(default=0)
    restock = models.BooleanField(default=False)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="return_line_quantity_positive"
            ),
            models.CheckConstraint(
                condition=Q(received_quantity__lte=models.F("quantity")),
                name="return_line_received_within_quantity",
            ),
        )

    def __str__(self) -> str:
        return f"{self.quantity} of line {self.order_line_id}"
