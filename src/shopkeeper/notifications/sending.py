"""Sending one outbox row with Django's e-mail framework: plain text and HTML.

The row is locked while its mail is handed to the SMTP server, and `sent_at` is set in the same
transaction: a second run of the job waits, then finds it sent. A failed hand-over counts the
try and keeps the (masked) error on the row, then raises for the job's retry. The mail could
still go twice only if the database were lost between the server's acceptance and our commit.
"""

from __future__ import annotations

import smtplib

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from shopkeeper.money import Money
from shopkeeper.notifications.kinds import SUBJECTS, Kind
from shopkeeper.notifications.models import Notification
from shopkeeper.orders.links import order_link
from shopkeeper.redaction import mask_secrets


def send_notification(notification_id: int) -> bool:
    """Send the row's mail unless it was sent; True when this call sent it."""
    failure: BaseException | None = None
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update(of=("self",))
            .select_related("order")
            .filter(pk=notification_id)
            .first()
        )
        if row is None or row.sent_at is not None:
            return False
        row.attempts += 1
        try:
            compose(row).send()
        except (smtplib.SMTPException, OSError) as error:
            failure = error
            row.last_error = mask_secrets(f"{type(error).__name__}: {error}")[:500]
        else:
            row.sent_at = timezone.now()
            row.last_error = ""
        row.save(update_fields=["attempts", "sent_at", "last_error"])
    if failure is not None:
        raise failure
    return True


def compose(row: Notification) -> EmailMultiAlternatives:
    order = row.order
    context = {
        "kind": row.kind,
        "number": order.number,
        "name": (order.shipping_address or {}).get("name", ""),
        "total": str(Money(order.grand_total_minor, order.currency)),
        "link": f"{settings.SHOPKEEPER_SITE_URL}{order_link(order.number)}",
        "details": row.details,
        "lines": [(line.name, line.quantity) for line in order.lines.order_by("id")],
    }
    template = f"notifications/email/{row.kind}"
    message = EmailMultiAlternatives(
        subject=SUBJECTS[Kind(row.kind)].format(number=order.number),
        body=render_to_string(f"{template}.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[row.to_email],
    )
    message.attach_alternative(render_to_string(f"{template}.html", context), "text/html")
    return message
