"""Missed webhooks are found: Stripe's Events API listed (the FakeGateway's), every event we have
not stored stored and processed like a delivery, and the counts reported (stripe_events/missed.py,
`shopkeeper webhooks sync`, the hourly job)."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.health import read_counts, read_notes
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.stripe_events import jobs
from shopkeeper.stripe_events.missed import SyncCounts, scheduled_since, sync_missed_events
from shopkeeper.stripe_events.models import EventSync, WebhookEvent
from tests.fakes import event_payload, intent_event_payload
from tests.integration.webhook_fixtures import deliver, deliver_ok
from tests.jobs import run_jobs
from tests.racing import race_ok

pytestmark = pytest.mark.django_db

HOUR = timedelta(hours=1)


def sync(hours: float = 1) -> SyncCounts:
    return sync_missed_events(since=timezone.now() - hours * HOUR, actor_label="Command line")


def processing_jobs() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT args->>'event_id', lock FROM procrastinate_jobs"
            " WHERE task_name = 'stripe_events.process_event' ORDER BY id"
        )
        return list(cursor.fetchall())


def paid_at_stripe(fake_gateway, placed, event_id: str = "evt_missed") -> bytes:
    """The customer paid; Stripe made `payment_intent.succeeded`; its webhook never came."""
    intent = fake_gateway.pay(placed.payment.intent_id)
    payload = intent_event_payload(intent, "payment_intent.succeeded", event_id)
    fake_gateway.add_event(payload)
    return payload


def test_given_a_payment_whose_webhook_never_came_when_synced_then_stored_processed_and_paid(
    fake_gateway, placed
):
    payload = paid_at_stripe(fake_gateway, placed)

    counts = sync()

    assert counts == SyncCounts(listed=1, already_stored=0, stored=1)
    stored = WebhookEvent.objects.get()
    assert (stored.event_id, stored.status, stored.source) == (
        "evt_missed",
        "received",
        "events_api",
    )
    assert stored.payload == json.loads(payload)  # as a delivery would have stored it
    intent_id = placed.payment.intent_id
    assert processing_jobs() == [("evt_missed", f"stripe:{intent_id}")]  # the webhook's lock

    run_jobs()  # the worker

    assert WebhookEvent.objects.get().status == "processed"
    assert Order.objects.get().payment_status == "paid"
    entry = AuditEntry.objects.get(action="webhooks.sync")
    assert entry.actor_email == "Command line"
    assert entry.details == {
        "listed": 1,
        "already_stored": 0,
        "stored": 1,
        "since": entry.details["since"],
        "trigger": "command",
    }


def test_given_delivered_events_when_synced_then_already_stored_and_nothing_deferred_or_audited(
    fake_gateway, placed
):
    payload = paid_at_stripe(fake_gateway, placed)
    assert deliver_ok(payload) == "processed"
    # A type no handler takes is not even listed.
    fake_gateway.add_event(
        event_payload({"id": "cus_1", "object": "customer"}, "customer.created", "evt_c")
    )

    counts = sync()

    assert counts == SyncCounts(listed=1, already_stored=1, stored=0)
    assert WebhookEvent.objects.get().source == "webhook"
    assert run_jobs() == []
    assert not AuditEntry.objects.filter(action="webhooks.sync").exists()
    run = EventSync.objects.get()
    assert (run.listed, run.already_stored, run.stored, run.error) == (1, 1, 0, "")
    assert run.finished_at is not None


def test_given_an_event_stored_as_failed_when_synced_then_it_stays_failed_for_a_person(
    fake_gateway, placed
):
    paid_at_stripe(fake_gateway, placed)
    WebhookEvent.objects.create(
        event_id="evt_missed", type="payment_intent.succeeded", status="failed", payload={}
    )

    assert sync() == SyncCounts(listed=1, already_stored=1, stored=0)
    assert WebhookEvent.objects.get().status == "failed"
    assert processing_jobs() == []


def test_given_events_older_than_the_window_then_they_are_not_listed(fake_gateway, placed):
    intent = fake_gateway.pay(placed.payment.intent_id)
    old = json.loads(intent_event_payload(intent, "payment_intent.succeeded", "evt_old"))
    old["created"] = int((timezone.now() - 5 * HOUR).timestamp())
    fake_gateway.add_event(json.dumps(old).encode())

    assert sync(hours=4) == SyncCounts()
    assert sync(hours=6) == SyncCounts(listed=1, already_stored=0, stored=1)
    assert fake_gateway.calls[-1][0] == "list_events"


def test_given_stripe_failing_mid_listing_then_the_run_keeps_its_error_and_raises(
    fake_gateway, placed
):
    fake_gateway.fail_next["list_events"] = [PaymentOutcomeUnknown("Stripe did not answer")]

    with pytest.raises(PaymentOutcomeUnknown):
        sync()

    run = EventSync.objects.get()
    assert run.finished_at is None and run.error == "PaymentOutcomeUnknown: Stripe did not answer"
    assert "FAILED" in read_notes()["webhooks_sync"]


def test_given_a_window_of_3_hours_then_the_scheduled_listing_reaches_back_to_the_last_one(
    settings,
):
    settings.SHOPKEEPER_EVENTS_SYNC_HOURS = 3
    now = timezone.now()
    assert scheduled_since(now) == now - 3 * HOUR  # never run

    def ran(ago: timedelta, *, trigger: str = "schedule", finished: bool = True) -> None:
        EventSync.objects.create(
            trigger=trigger,
            since=now - ago - 3 * HOUR,
            started_at=now - ago,
            finished_at=now - ago if finished else None,
        )

    ran(HOUR)
    assert scheduled_since(now) == now - 3 * HOUR  # the usual hour: the window
    EventSync.objects.all().delete()
    ran(48 * HOUR)  # then the worker was down for two days
    ran(30 * HOUR, finished=False)  # a run that died covers nothing
    ran(HOUR, trigger="command")  # a person's listing of the last hour neither
    assert scheduled_since(now) == now - 48 * HOUR - timedelta(minutes=10)
    EventSync.objects.all().delete()
    ran(40 * 24 * HOUR)  # longer than Stripe keeps events
    assert scheduled_since(now) == now - 30 * 24 * HOUR


def test_given_the_hourly_job_then_it_syncs_as_shopkeeper_and_audits_only_what_it_stored(
    fake_gateway, placed
):
    paid_at_stripe(fake_gateway, placed)

    jobs.sync_missed_events(timestamp=int(timezone.now().timestamp()))
    jobs.sync_missed_events(timestamp=int(timezone.now().timestamp()))

    first, second = EventSync.objects.order_by("id")
    assert (first.trigger, first.stored, second.stored, second.already_stored) == (
        "schedule",
        1,
        0,
        1,
    )
    (entry,) = AuditEntry.objects.filter(action="webhooks.sync")
    assert entry.actor_email == SYSTEM and entry.actor_id is None
    assert entry.target_id == str(first.pk)


@pytest.mark.periodic_ticks
def test_the_hourly_job_is_registered_periodic_on_its_own_lock():
    from procrastinate.contrib.django import app

    (periodic,) = [
        p
        for p in app.periodic_registry.periodic_tasks.values()
        if p.task is jobs.sync_missed_events
    ]
    assert periodic.cron == "7 * * * *"
    assert jobs.sync_missed_events.queueing_lock == "webhooks.sync"


def test_webhooks_sync_prints_the_counts(fake_gateway, placed):
    paid_at_stripe(fake_gateway, placed)
    out = StringIO()

    call_command("webhooks", "sync", "--hours", "2", stdout=out)

    assert out.getvalue() == (
        "Stripe events of the last 2 h: 1 listed, 0 already stored, 1 stored now;"
        " the worker processes them\n"
    )
    assert EventSync.objects.get().trigger == "command"
    listed = StringIO()
    call_command("webhooks", "list", stdout=listed)
    assert (
        listed.getvalue().rstrip().endswith("evt_missed  (missed webhook: found by webhooks sync)")
    )


@pytest.mark.parametrize("hours", ["0", "721", "-3", "1.5", "day"])
def test_webhooks_sync_refuses_hours_outside_stripe_s_30_days(fake_gateway, hours):
    with pytest.raises(CommandError, match="whole number of hours from 1 to 720"):
        call_command("webhooks", "sync", "--hours", hours)

    assert not EventSync.objects.exists() and fake_gateway.calls == []


def test_webhooks_sync_reports_stripe_failing_as_a_message(fake_gateway):
    fake_gateway.fail_next["list_events"] = [PaymentOutcomeUnknown("Stripe did not answer")]

    with pytest.raises(CommandError, match="could not be listed: Stripe did not answer"):
        call_command("webhooks", "sync")


def test_status_and_metrics_report_the_last_sync_and_what_was_missed(
    fake_gateway, placed, client, settings
):
    assert read_notes()["webhooks_sync"].startswith("never")
    paid_at_stripe(fake_gateway, placed)
    sync()
    sync()

    line = read_notes()["webhooks_sync"]
    counts = {name: value for name, (_, value) in read_counts().items()}

    assert line.startswith("last ") and line.endswith("(command): 1 listed, 0 stored")
    assert counts["webhooks_missed_total"] == 1
    assert counts["webhooks_sync_last_stored"] == 0
    assert 0 <= counts["webhooks_sync_age_seconds"] < 60
    out = StringIO()
    with pytest.raises(SystemExit):  # no worker runs here: the `worker` check fails
        call_command("status", stdout=out)
    assert "webhooks_sync" in out.getvalue() and "webhooks_missed_total     1" in out.getvalue()
    settings.SHOPKEEPER_METRICS_TOKEN = "metrics-token"
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token").content.decode()
    assert "shopkeeper_webhooks_missed_total 1.0" in metrics
    assert "shopkeeper_webhooks_sync_last_stored 0.0" in metrics


@pytest.mark.django_db(transaction=True)
def test_given_a_late_delivery_racing_syncs_then_one_row_one_job_one_payment(fake_gateway, placed):
    payload = paid_at_stripe(fake_gateway, placed, "evt_race")

    def deliver_or_sync(i: int) -> int:
        if i % 2:
            return sync().stored
        return int(deliver(payload).json()["status"] == "received")

    stored = race_ok(8, deliver_or_sync)
    runs = race_ok(2, lambda i: run_jobs())  # two workers

    assert sum(stored) == 1
    assert WebhookEvent.objects.filter(event_id="evt_race").count() == 1
    assert len(processing_jobs()) == 1
    assert [run.outcome for worker in runs for run in worker] == ["succeeded"]
    assert Order.objects.get().payment_status == "paid"
    assert LedgerEntry.objects.filter(kind="capture").count() == 1
