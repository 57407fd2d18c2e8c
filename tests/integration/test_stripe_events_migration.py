"""Stored Stripe events survive WebhookEvent's move from payments to stripe_events."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from shopkeeper.stripe_events.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)
PAYMENTS_BEFORE = ("payments", "0002_ledger_append_only_trigger")
BEFORE = [PAYMENTS_BEFORE, ("stripe_events", None)]


def test_given_events_stored_by_payments_when_migrated_then_stripe_events_reads_them():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = MigrationExecutor(connection).loader.project_state([PAYMENTS_BEFORE]).apps
    old_apps.get_model("payments", "WebhookEvent").objects.create(
        event_id="evt_before_move",
        type="payment_intent.succeeded",
        status="failed",
        payload={"id": "evt_before_move"},
        error="boom",
        received_at=timezone.now(),
    )

    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    stored = WebhookEvent.objects.get(event_id="evt_before_move")
    assert (stored.status, stored.error, stored.payload) == (
        "failed",
        "boom",
        {"id": "evt_before_move"},
    )
    WebhookEvent.objects.create(
        event_id="evt_after_move", type="charge.refunded", status="ignored", payload={}
    )
    assert WebhookEvent.objects.count() == 2
