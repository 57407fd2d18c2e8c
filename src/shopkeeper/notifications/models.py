"""The outbox: one row per e-mail an event owes a customer, written in the event's transaction.

Unique on (order, kind, event_key), so one event never owes two mails, whoever records it twice
(a webhook delivered again, a retried request). `sent_at` is set in the transaction that sent
it: a row sent once is never sent again, however often its job runs.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from shopkeeper.notifications.kinds import Kind


class Notification(models.Model):
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, related_name="notifications"
    )
    kind = models.CharField(max_length=30, choices=[(k.value, k.value) for k in Kind])
    # What makes the event one: a shipment's id, a refund's id, "placed".
    event_key = models.CharField(max_length=100)
    to_email = models.EmailField()
    # What the mail says beyond the order itself (carrier, amount, card), as the event knew it.
    details = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ("id",)
        constraints = (
            models.UniqueConstraint(
                fields=("order", "kind", "event_key"), name="notification_once"
            ),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.event_key} of order {self.order_id}"
