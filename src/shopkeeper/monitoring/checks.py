"""The checks and counts this package registers (shopkeeper.health): the database, webhooks."""

from __future__ import annotations

from django.db import DatabaseError, connection

from shopkeeper.health import Verdict
from shopkeeper.stripe_events.models import WebhookEvent


def database_reachable() -> Verdict:
    """One `SELECT 1` on Django's connection; after a failure the connection is closed, so the
    next request connects again."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as error:
        connection.close()
        return Verdict(False, f"unreachable ({type(error).__name__})")
    return Verdict(True, "reachable")


def count_failed_webhooks() -> int:
    return WebhookEvent.objects.filter(status=WebhookEvent.Status.FAILED).count()
