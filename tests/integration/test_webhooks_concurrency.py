"""Payment news arriving at once on PostgreSQL: one event row, one job, one set of ledger rows,
however many deliveries, workers and return pages race."""

from __future__ import annotations

from collections import Counter

import pytest
from django.test import Client

from shopkeeper.audit.models import AuditEntry
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.services import sync_from_stripe
from shopkeeper.stripe_events.models import WebhookEvent
from tests.fakes import intent_event_payload, sign_payload
from tests.jobs import run_jobs
from tests.racing import race_ok

pytestmark = pytest.mark.django_db(transaction=True)


def deliver(payload: bytes) -> str:
    response = Client().post(
        "/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload),
    )
    assert response.status_code == 200, response.content
    return str(response.json()["status"])


def test_given_one_event_when_delivered_8_times_at_once_then_processed_once(placed, fake_gateway):
    payload = intent_event_payload(
        fake_gateway.pay(placed.payment.intent_id), "payment_intent.succeeded", "evt_burst"
    )

    statuses = race_ok(8, lambda i: deliver(payload))
    runs = race_ok(4, lambda i: run_jobs())  # four workers at once

    assert Counter(statuses) == {"received": 1, "duplicate": 7}
    assert [run.outcome for worker in runs for run in worker] == ["succeeded"]
    assert WebhookEvent.objects.get().status == "processed"
    assert sorted(LedgerEntry.objects.values_list("kind", "amount_minor")) == [
        ("authorization", 2600),
        ("capture", 2600),
    ]
    assert AuditEntry.objects.filter(action="payment.paid").count() == 1
    assert Order.objects.get().payment_status == "paid"


def test_given_webhooks_and_return_pages_at_once_then_one_ledger_entry_each_and_one_audit(
    placed, fake_gateway
):
    intent = fake_gateway.pay(placed.payment.intent_id)
    secret = placed.payment.client_secret

    race_ok(
        5, lambda i: deliver(intent_event_payload(intent, "payment_intent.succeeded", f"evt_{i}"))
    )

    def news(i: int) -> object:
        if i % 2:
            return sync_from_stripe(intent.id, client_secret=secret)
        return run_jobs()  # a worker

    race_ok(10, news)

    assert sorted(LedgerEntry.objects.values_list("kind", "amount_minor")) == [
        ("authorization", 2600),
        ("capture", 2600),
    ]
    assert AuditEntry.objects.filter(action="payment.paid").count() == 1
    assert WebhookEvent.objects.filter(status="processed").count() == 5
