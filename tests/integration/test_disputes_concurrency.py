"""Dispute and dashboard-refund news arriving at once on PostgreSQL: each movement recorded once.

Stripe delivers at least once and may deliver in parallel; the event row's unique id, the order
lock and the ledger's (kind, external id) constraint keep the records single.
"""

from __future__ import annotations

from collections import Counter

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.disputes.models import Dispute
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import paid_order
from tests.fakes import charge_event_payload, dispute_event_payload, refund_event_payload
from tests.integration.webhook_fixtures import deliver_ok
from tests.jobs import run_jobs
from tests.racing import race_ok

pytestmark = pytest.mark.django_db(transaction=True)


def dispute_rows() -> list[tuple[str, int]]:
    rows = LedgerEntry.objects.filter(kind__in=("dispute", "dispute_closed"))
    return sorted(rows.values_list("kind", "amount_minor"))


def test_given_one_dispute_event_when_delivered_8_times_at_once_then_one_ledger_row(
    fake_gateway,
):
    order = paid_order(fake_gateway)
    dispute = fake_gateway.dispute(order.payments.get().intent_id, 2500)
    payload = dispute_event_payload(dispute, "charge.dispute.created", "evt_dispute_burst")

    statuses = race_ok(8, lambda i: deliver_ok(payload))  # each delivery, then a worker
    run_jobs()  # what the racing workers left (one PaymentIntent's jobs run one at a time)

    assert Counter(statuses)["duplicate"] == 7
    assert WebhookEvent.objects.get().status == "processed"
    assert WebhookEvent.objects.count() == 1
    assert dispute_rows() == [("dispute", 2500)]
    assert Dispute.objects.count() == 1
    assert AuditEntry.objects.filter(action="order.dispute.created").count() == 1


def test_given_created_and_won_under_many_event_ids_at_once_then_won_once(fake_gateway):
    order = paid_order(fake_gateway)
    intent_id = order.payments.get().intent_id
    opened = fake_gateway.dispute(intent_id, 2500)
    won = fake_gateway.dispute(intent_id, 2500, status="won")
    payloads = [
        dispute_event_payload(opened, "charge.dispute.created", f"evt_created_{i}")
        for i in range(4)
    ] + [dispute_event_payload(won, "charge.dispute.closed", f"evt_closed_{i}") for i in range(4)]

    race_ok(8, lambda i: deliver_ok(payloads[i]))  # each delivery, then a worker, at once
    run_jobs()  # what the racing workers left (one PaymentIntent's jobs run one at a time)

    assert Counter(WebhookEvent.objects.values_list("status", flat=True)) == {"processed": 8}
    assert dispute_rows() == [("dispute", 2500), ("dispute_closed", 2500)]
    dispute = Dispute.objects.get()
    assert (dispute.status, dispute.outcome) == ("won", "released")
    actions = Counter(
        AuditEntry.objects.filter(action__startswith="order.dispute.").values_list(
            "action", flat=True
        )
    )
    assert actions == {"order.dispute.created": 1, "order.dispute.won": 1}


def test_given_dashboard_refund_news_from_several_events_at_once_then_one_refund(fake_gateway):
    order = paid_order(fake_gateway)
    intent_id = order.payments.get().intent_id
    outside = fake_gateway.refund_outside(intent_id, 1500)
    (charge,) = fake_gateway.list_charges(intent_id)
    payloads = [
        charge_event_payload(charge, refunds=[outside], event_id="evt_c1"),
        charge_event_payload(charge, event_id="evt_c2"),
        refund_event_payload(outside, "refund.created", "evt_r1"),
        refund_event_payload(outside, "refund.updated", "evt_r2"),
        refund_event_payload(outside, "charge.refund.updated", "evt_r3"),
        charge_event_payload(charge, refunds=[outside], event_id="evt_c1"),
    ]

    race_ok(len(payloads), lambda i: deliver_ok(payloads[i]))
    run_jobs()

    assert Refund.objects.count() == 1
    assert list(LedgerEntry.objects.filter(kind="refund").values_list("amount_minor")) == [(1500,)]
    assert WebhookEvent.objects.filter(status="processed").count() == 5
    assert AuditEntry.objects.filter(action="order.refund.succeeded").count() == 1
