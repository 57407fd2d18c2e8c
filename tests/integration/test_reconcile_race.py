"""Reconciliation racing on PostgreSQL: two scheduled runs overlapping, or a run meeting the
webhook that brings the same news, record each movement once; two kept runs (the command's, the
nightly job's) never run at once."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.reconciliation.models import ReconcileRun, RunSource
from shopkeeper.reconciliation.runs import ReconcileRunning, Scope, run_reconcile
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from tests.factories import paid_order
from tests.fakes import GatewayInBetween, refund_event_payload, sign_payload
from tests.integration.refund_fixtures import refunded_minor
from tests.racing import race

pytestmark = pytest.mark.django_db(transaction=True)


def test_given_overlapping_runs_with_fix_then_each_stripe_fact_is_recorded_once(fake_gateway):
    orders = [paid_order(fake_gateway) for _ in range(3)]
    for order in orders:
        intent_id = Payment.objects.get(order=order).intent_id
        fake_gateway.refund_outside(intent_id, 500)
        fake_gateway.dispute(intent_id, 300)

    reports = race(4, lambda i: reconcile(fix=True, gateway=fake_gateway))

    assert not [report for report in reports if isinstance(report, BaseException)]
    assert Refund.objects.count() == 3
    assert all(refunded_minor(order) == 500 for order in orders)
    assert LedgerEntry.objects.filter(kind="dispute").count() == 3
    assert reconcile(fix=True, gateway=fake_gateway).findings == []


def test_given_a_run_and_the_webhook_bringing_the_same_refund_then_recorded_once(fake_gateway):
    order = paid_order(fake_gateway)
    refund = fake_gateway.refund_outside(Payment.objects.get(order=order).intent_id, 700)
    payload = refund_event_payload(refund, "refund.created")

    def work(i: int) -> object:
        if i % 2:
            return reconcile(fix=True, gateway=fake_gateway)
        return (
            Client()
            .post(
                "/webhooks/stripe",
                data=payload,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=sign_payload(payload),
            )
            .status_code
        )

    results = race(6, work)

    assert not [result for result in results if isinstance(result, BaseException)]
    assert Refund.objects.count() == 1 and refunded_minor(order) == 700


class SlowListing(GatewayInBetween):
    """Stripe's list of PaymentIntents takes a while: long enough for runs to overlap."""

    def list_payment_intents(self, **kwargs):
        time.sleep(0.5)
        return self._gateway.list_payment_intents(**kwargs)


def test_given_two_kept_runs_started_together_then_one_runs_and_the_other_is_refused(
    fake_gateway,
):
    paid_order(fake_gateway)
    slow = SlowListing(fake_gateway)
    scope = Scope(fix=True)

    outcomes = race(2, lambda i: run_reconcile(source=RunSource.COMMAND, scope=scope, gateway=slow))

    refused = [outcome for outcome in outcomes if isinstance(outcome, ReconcileRunning)]
    assert len(refused) == 1, outcomes
    (run,) = ReconcileRun.objects.all()
    assert run.status == "ok" and run.checked == 1, run.error
