"""A refund left pending because Stripe's answer was lost settles itself: the worker sends it
again with the same idempotency key on a backoff (refunds.jobs) until the answer is known."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.db.models import F
from procrastinate.contrib.django.models import ProcrastinateJob

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff
from tests.integration.refund_fixtures import refunded_minor
from tests.jobs import run_jobs

# The request's own retries: none; the worker's schedule is what is tested.
pytestmark = [pytest.mark.django_db, pytest.mark.refund_retry_delays()]

DELAYS = [60, 300, 1800, 7200, 21600, 43200]


@pytest.fixture(autouse=True)
def schedule(settings):
    settings.SHOPKEEPER_REFUND_SETTLE_DELAYS = DELAYS


def lost_answer_refund(fake_gateway):
    """Stripe made the refund, but its answer was lost (a timeout after sending)."""
    order = paid_order(fake_gateway)
    fake_gateway.lose_next_response.add("create_refund")
    refund = request_refund(
        order_number=order.number, actor=staff("manager"), amount="10.00", reason="other"
    )
    assert refund.status == "pending" and not refund.stripe_refund_id
    return order, refund


def waiting_jobs() -> list[tuple[str, dict, str | None]]:
    return [
        (job.task_name, job.args, job.lock)
        for job in ProcrastinateJob.objects.filter(status="todo")
        .exclude(queue_name="email")  # the customer's mails (tests/integration/test_emails.py)
        .order_by("id")
    ]


def time_passes(seconds: float) -> list[str]:
    """`seconds` go by: the refunds' last sends are that much older and the jobs due by then
    run (the worker); what each run did."""
    Refund.objects.update(last_sent_at=F("last_sent_at") - timedelta(seconds=seconds))
    return [run.outcome for run in run_jobs(seconds_later=seconds)]


def refund_sends(fake_gateway, refund) -> list[str]:
    return [key for operation, key in fake_gateway.calls if key == refund.idempotency_key]


def test_given_answer_lost_then_a_job_is_scheduled_a_minute_later_with_the_refunds_lock(
    fake_gateway,
):
    _, refund = lost_answer_refund(fake_gateway)

    assert waiting_jobs() == [
        (
            "refunds.settle_unknown_refund",
            {"refund_id": refund.pk, "step": 0},
            f"refund:{refund.pk}",
        )
    ]
    job = ProcrastinateJob.objects.get(task_name="refunds.settle_unknown_refund")
    assert 55 <= (job.scheduled_at - refund.last_sent_at).total_seconds() <= 65
    assert run_jobs() == []  # not due yet
    entry = AuditEntry.objects.get(action="order.refund.outcome_unknown")
    assert entry.details["retried_by_worker"] is True


def test_given_answer_lost_when_the_job_sends_again_then_settled_with_the_same_key_once(
    fake_gateway,
):
    order, refund = lost_answer_refund(fake_gateway)

    assert run_jobs() == []  # not due yet
    assert time_passes(60) == ["succeeded"]

    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.stripe_refund_id
    assert refund_sends(fake_gateway, refund) == [refund.idempotency_key] * 2  # same key
    assert len(fake_gateway.refunds) == 1  # Stripe replayed the first answer: one refund
    assert LedgerEntry.objects.filter(order=order, kind="refund").count() == 1
    assert refunded_minor(order) == 1000
    assert waiting_jobs() == []


def test_given_the_job_settled_it_then_the_audit_names_shopkeeper_not_stripe(fake_gateway):
    lost_answer_refund(fake_gateway)

    assert time_passes(60) == ["succeeded"]

    entry = AuditEntry.objects.get(action="order.refund.succeeded")
    assert (entry.actor_id, entry.actor_email) == (None, SYSTEM)  # the worker sent it again


def test_given_answer_still_unknown_then_each_step_waits_longer_until_the_schedule_ends(
    fake_gateway,
):
    _, refund = lost_answer_refund(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [
        PaymentOutcomeUnknown("read timed out") for _ in DELAYS
    ]

    waits = []
    for step, delay in enumerate(DELAYS):
        (job,) = ProcrastinateJob.objects.filter(status="todo").exclude(queue_name="email")
        assert job.args == {"refund_id": refund.pk, "step": step}
        waits.append(round((job.scheduled_at - Refund.objects.get().last_sent_at).total_seconds()))
        assert time_passes(delay) == ["succeeded"]

    assert waits == DELAYS
    assert waiting_jobs() == []  # the schedule is over: reconcile's to settle
    refund.refresh_from_db()
    assert refund.status == "pending"
    assert len(refund_sends(fake_gateway, refund)) == 1 + len(DELAYS)
    last = AuditEntry.objects.filter(action="order.refund.outcome_unknown").order_by("id").last()
    assert last is not None and last.details["retried_by_worker"] is False


def test_given_settled_by_a_webhook_meanwhile_then_the_job_sends_nothing(fake_gateway):
    _, refund = lost_answer_refund(fake_gateway)
    Refund.objects.filter(pk=refund.pk).update(stripe_refund_id="re_from_webhook")
    sends = len(refund_sends(fake_gateway, refund))

    assert time_passes(60) == ["succeeded"]

    assert len(refund_sends(fake_gateway, refund)) == sends
    assert waiting_jobs() == []


def test_given_the_recording_rolled_back_then_no_job(fake_gateway):
    order = paid_order(fake_gateway)
    fake_gateway.lose_next_response.add("create_refund")

    with pytest.raises(RuntimeError), transaction.atomic():
        request_refund(
            order_number=order.number, actor=staff("manager"), amount="10.00", reason="other"
        )
        raise RuntimeError("the caller's transaction fails")

    assert not Refund.objects.exists() and waiting_jobs() == []
