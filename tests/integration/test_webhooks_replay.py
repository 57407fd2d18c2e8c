"""Events whose every try failed are kept as failed and processed again: by Stripe's
redelivery or by `shopkeeper webhooks replay --failed` (a new job each). Forged or stale
deliveries leave only a log line."""

from __future__ import annotations

import io
import logging
import time

import pytest
from django.core.management import CommandError, call_command

from shopkeeper.disputes.models import Dispute
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.provider import use_gateway
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events import dispatch
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import paid_order
from tests.fakes import GatewayInBetween, charge_event_payload, dispute_event_payload, sign_payload
from tests.integration.webhook_fixtures import deliver, deliver_ok
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


class StripeDown(GatewayInBetween):
    """The fake gateway while Stripe does not answer reads of refunds."""

    def __init__(self, gateway) -> None:
        super().__init__(gateway)
        self.down = True

    def list_refunds(self, intent_id):
        if self.down:
            raise PaymentOutcomeUnknown("Stripe did not answer the list refunds request")
        return self._gateway.list_refunds(intent_id)


@pytest.fixture
def stripe_down(fake_gateway):
    gateway = StripeDown(fake_gateway)
    with use_gateway(gateway):  # type: ignore[arg-type]
        yield gateway


def webhooks_command(*args: str) -> str:
    out = io.StringIO()
    call_command("webhooks", *args, stdout=out)
    return out.getvalue()


def failed_charge_event(fake_gateway, event_id: str, amount: int = 800):
    """A `charge.refunded` for a dashboard refund, failed because Stripe could not be asked."""
    order = paid_order(fake_gateway)
    intent_id = order.payments.get().intent_id
    fake_gateway.refund_outside(intent_id, amount)
    (charge,) = fake_gateway.list_charges(intent_id)
    assert deliver_ok(charge_event_payload(charge, event_id=event_id)) == "failed"  # every try
    return order


def test_given_failed_event_when_replayed_after_stripe_is_back_then_processed(
    fake_gateway, stripe_down
):
    order = failed_charge_event(fake_gateway, "evt_failed_1")
    stripe_down.down = False

    out = webhooks_command("replay", "--failed")
    assert WebhookEvent.objects.get(event_id="evt_failed_1").status == "received"
    run_jobs()

    assert "received 1 failed event(s) again; the worker processes them: evt_failed_1" in out
    event = WebhookEvent.objects.get(event_id="evt_failed_1")
    assert (event.status, event.error) == ("processed", "")
    assert Refund.objects.get(order=order).status == "succeeded"
    assert LedgerEntry.objects.filter(order=order, kind="refund").count() == 1
    # Stripe's own redelivery afterwards is a duplicate.
    (charge,) = fake_gateway.list_charges(order.payments.get().intent_id)
    assert deliver_ok(charge_event_payload(charge, event_id="evt_failed_1")) == "duplicate"
    assert webhooks_command("replay", "--failed").startswith("received 0 failed event(s)")
    assert run_jobs() == []


def test_given_event_still_failing_when_replayed_then_failed_again_after_every_try(
    fake_gateway, stripe_down, settings
):
    failed_charge_event(fake_gateway, "evt_failed_2")
    WebhookEvent.objects.filter(event_id="evt_failed_2").update(error="old")

    webhooks_command("replay", "--failed")
    runs = run_jobs()

    assert len(runs) == settings.SHOPKEEPER_WEBHOOK_TRIES
    assert runs[-1].outcome == "failed"
    event = WebhookEvent.objects.get(event_id="evt_failed_2")
    assert event.status == "failed" and "PaymentOutcomeUnknown" in event.error
    assert event.attempts == settings.SHOPKEEPER_WEBHOOK_TRIES
    assert not Refund.objects.exists()
    (line,) = webhooks_command("list", "--failed").splitlines()
    assert f"{settings.SHOPKEEPER_WEBHOOK_TRIES} failed tries" in line


def test_given_several_failed_when_one_is_named_then_only_that_one_is_replayed(
    fake_gateway, stripe_down
):
    failed_charge_event(fake_gateway, "evt_a")
    failed_charge_event(fake_gateway, "evt_b")
    stripe_down.down = False

    out = webhooks_command("replay", "evt_b")
    run_jobs()

    assert out.endswith("the worker processes them: evt_b\n")
    statuses = dict(WebhookEvent.objects.values_list("event_id", "status"))
    assert statuses == {"evt_a": "failed", "evt_b": "processed"}


def test_given_replay_without_events_or_flag_then_refused(fake_gateway):
    with pytest.raises(CommandError, match="--failed"):
        webhooks_command("replay")


def test_given_replay_of_an_event_not_stored_as_failed_then_refused(fake_gateway):
    with pytest.raises(CommandError, match="not stored as failed: evt_nowhere"):
        webhooks_command("replay", "evt_nowhere")


def test_given_failed_dispute_event_when_replayed_then_recorded_once(fake_gateway, monkeypatch):
    order = paid_order(fake_gateway)
    dispute = fake_gateway.dispute(order.payments.get().intent_id, 2500)
    payload = dispute_event_payload(dispute, "charge.dispute.created", "evt_dispute_failed")
    real = dispatch.HANDLERS["charge.dispute.created"]

    def broken(event):
        real(event)  # its effects roll back with the event row
        raise RuntimeError("database went away")

    monkeypatch.setitem(dispatch.HANDLERS, "charge.dispute.created", broken)
    assert deliver_ok(payload) == "failed"
    assert not Dispute.objects.exists() and not LedgerEntry.objects.filter(kind="dispute")
    monkeypatch.setitem(dispatch.HANDLERS, "charge.dispute.created", real)

    webhooks_command("replay", "--failed")
    webhooks_command("replay", "--failed")  # nothing failed any more: no second job
    assert [run.outcome for run in run_jobs()] == ["succeeded"]

    assert LedgerEntry.objects.filter(kind="dispute").count() == 1
    assert Dispute.objects.get().outcome == "open"
    assert deliver_ok(payload) == "duplicate"


def test_given_stored_events_when_listed_then_failed_filter_shows_only_failures(
    fake_gateway, stripe_down
):
    failed_charge_event(fake_gateway, "evt_listed_failed")
    order = paid_order(fake_gateway)
    deliver_ok(
        dispute_event_payload(
            fake_gateway.dispute(order.payments.get().intent_id, 100),
            "charge.dispute.created",
            "evt_listed_ok",
        )
    )

    everything = webhooks_command("list")
    failures = webhooks_command("list", "--failed")

    assert "evt_listed_ok" in everything and "evt_listed_failed" in everything
    assert "evt_listed_ok" not in failures
    (line,) = failures.splitlines()
    assert "failed" in line and "charge.refunded" in line and "PaymentOutcomeUnknown" in line


@pytest.mark.parametrize("case", ["wrong secret", "stale", "missing"])
def test_given_forged_or_stale_signature_then_400_and_only_a_log_line(fake_gateway, caplog, case):
    order = paid_order(fake_gateway)
    payload = dispute_event_payload(
        fake_gateway.dispute(order.payments.get().intent_id, 2500), "charge.dispute.created"
    )
    signature = {
        "wrong secret": sign_payload(payload, secret="whsec_forger"),
        "stale": sign_payload(payload, timestamp=int(time.time()) - 301),
        "missing": "",
    }[case]

    with caplog.at_level(logging.WARNING, logger="shopkeeper.stripe_events.views"):
        response = deliver(payload, signature)

    assert response.status_code == 400 and response.json()["code"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert not Dispute.objects.exists() and not LedgerEntry.objects.filter(kind="dispute")
    (record,) = [r for r in caplog.records if r.name == "shopkeeper.stripe_events.views"]
    assert "Rejected a Stripe webhook" in record.getMessage()


def test_given_signature_just_inside_the_tolerance_then_accepted(fake_gateway):
    order = paid_order(fake_gateway)
    payload = dispute_event_payload(
        fake_gateway.dispute(order.payments.get().intent_id, 2500), "charge.dispute.created"
    )

    response = deliver(payload, sign_payload(payload, timestamp=int(time.time()) - 290))
    run_jobs()

    assert response.status_code == 200
    assert Dispute.objects.count() == 1
