"""Every reconcile run is kept: `shopkeeper reconcile` and the nightly job each write a
ReconcileRun with its counts and findings, audited; one run at a time."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone
from procrastinate.contrib.django import app

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.jobs.defer import defer_in_transaction
from shopkeeper.payments.models import Payment
from shopkeeper.reconciliation import runs
from shopkeeper.reconciliation.jobs import daily_cron, nightly_reconcile, window_start
from shopkeeper.reconciliation.models import ReconcileRun, RunSource, RunStatus
from shopkeeper.refunds.models import Refund
from tests.factories import paid_order
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


def reconcile(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("reconcile", *args, stdout=out, stderr=err)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def dashboard_refund(fake_gateway, amount: int = 700) -> str:
    """A paid order refunded at Stripe's dashboard: a refund our books lack."""
    order = paid_order(fake_gateway)
    fake_gateway.refund_outside(Payment.objects.get(order=order).intent_id, amount)
    return order.number


def nightly() -> list[str]:
    """The periodic job, deferred as procrastinate's periodic deferrer does, then run."""
    with transaction.atomic():
        defer_in_transaction(nightly_reconcile, timestamp=int(timezone.now().timestamp()))
    return [job.outcome for job in run_jobs()]


def test_given_a_difference_when_the_command_runs_then_a_run_keeps_its_findings(fake_gateway):
    number = dashboard_refund(fake_gateway)
    paid_order(fake_gateway)

    status, _ = reconcile("--since", "24h")

    assert status == 1
    run = ReconcileRun.objects.get()
    assert (run.source, run.status, run.fix) == ("command", "differences", False)
    assert (run.checked, run.differences, run.fixed) == (2, 1, 0)
    assert run.since is not None and run.finished_at is not None and run.error == ""
    (finding,) = run.findings
    assert finding["order"] == number and finding["kind"] == "refund_missing_here"
    assert finding["fixed"] is False and run.findings_omitted == 0
    entry = AuditEntry.objects.get(action="reconcile.run")
    assert entry.actor_id is None and entry.actor_email == "Command line"
    assert entry.target_id == str(run.pk) and entry.details["differences"] == 1


def test_given_fix_then_the_run_counts_what_it_fixed(fake_gateway):
    dashboard_refund(fake_gateway)

    assert reconcile("--fix")[0] == 0

    run = ReconcileRun.objects.get()
    assert (run.status, run.fix, run.differences, run.fixed) == ("ok", True, 1, 1)
    assert run.since is None and run.findings[0]["fixed"] is True


def test_given_more_findings_than_kept_then_the_rest_are_counted(fake_gateway, monkeypatch):
    for _ in range(3):
        dashboard_refund(fake_gateway)
    monkeypatch.setattr(runs, "FINDINGS_KEPT", 2)

    reconcile()

    run = ReconcileRun.objects.get()
    assert (len(run.findings), run.findings_omitted, run.differences) == (2, 1, 3)


def test_given_stripe_down_then_the_run_failed_with_the_error_and_nothing_else_changed(
    fake_gateway, monkeypatch
):
    dashboard_refund(fake_gateway)

    def down(**kwargs):
        raise PaymentOutcomeUnknown("Stripe did not answer the list payments request")

    monkeypatch.setattr(fake_gateway, "list_payment_intents", down)
    audited = AuditEntry.objects.count()

    status, _ = reconcile("--fix")

    assert status == 2
    run = ReconcileRun.objects.get()
    assert run.status == "failed" and "Stripe did not answer" in run.error
    assert (run.checked, run.differences, run.fixed) == (0, 0, 0)
    assert not Refund.objects.exists()
    assert AuditEntry.objects.count() == audited + 1
    assert AuditEntry.objects.last().action == "reconcile.run"


def test_given_an_unknown_order_then_the_run_failed_and_the_command_exits_2(fake_gateway):
    assert reconcile("--order", "SK-NOPE")[0] == 2
    assert reconcile("--order", "X" * 300)[0] == 2  # longer than any order number: no crash
    typo, nope = ReconcileRun.objects.all()
    assert nope.status == "failed" and "SK-NOPE" in nope.error and nope.order_number == "SK-NOPE"
    assert typo.status == "failed" and typo.order_number == "X" * 64


@pytest.fixture
def another_run() -> Iterator[None]:
    """A reconcile under way elsewhere: its advisory lock held on another connection."""
    params = connection.get_connection_params()
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [runs._LOCK_KEY])
        yield


def test_given_a_run_under_way_then_another_is_refused_and_writes_nothing(
    fake_gateway, another_run
):
    dashboard_refund(fake_gateway)

    status, out = reconcile()

    assert status == 2 and "Another reconcile run is under way" in out
    assert not ReconcileRun.objects.exists()
    assert nightly() == ["succeeded"]  # the nightly job skips, and is not retried
    assert not ReconcileRun.objects.exists()


def test_given_a_run_left_running_by_a_dead_process_then_the_next_closes_it(fake_gateway):
    dead = ReconcileRun.objects.create(started_at=timezone.now(), source=RunSource.COMMAND)

    reconcile()

    dead.refresh_from_db()
    assert dead.status == "failed" and "Interrupted" in dead.error
    assert ReconcileRun.objects.filter(status=RunStatus.OK).count() == 1


@pytest.mark.periodic_ticks
def test_the_nightly_job_is_scheduled_daily_at_the_setting():
    periodic = app.periodic_registry.periodic_tasks[("reconciliation.nightly_reconcile", "nightly")]
    assert periodic.cron == "0 3 * * *"
    assert daily_cron((23, 5)) == "5 23 * * *"
    assert (nightly_reconcile.lock, nightly_reconcile.queueing_lock) == ("reconcile", "reconcile")


def test_given_the_schedule_then_a_run_from_source_schedule_that_fixes_nothing(
    fake_gateway, settings
):
    settings.SHOPKEEPER_RECONCILE_FIX = False
    number = dashboard_refund(fake_gateway)

    assert nightly() == ["succeeded"]

    run = ReconcileRun.objects.get()
    assert (run.source, run.status, run.fix, run.fixed) == ("schedule", "differences", False, 0)
    assert run.findings[0]["order"] == number and not Refund.objects.exists()
    entry = AuditEntry.objects.get(action="reconcile.run")
    assert entry.actor_id is None and entry.actor_email == SYSTEM
    assert entry.details["source"] == "schedule" and entry.details["differences"] == 1
    assert timezone.now() - run.since == pytest.approx(timedelta(hours=24), abs=timedelta(1))


def test_given_the_fix_setting_then_the_nightly_run_fixes(fake_gateway, settings):
    settings.SHOPKEEPER_RECONCILE_FIX = True
    dashboard_refund(fake_gateway)

    nightly()

    run = ReconcileRun.objects.get()
    assert (run.status, run.fix, run.fixed) == ("ok", True, 1)
    assert Refund.objects.get().amount_minor == 700


def test_the_nightly_window_starts_at_the_last_completed_scheduled_run(fake_gateway):
    now = timezone.now()
    assert window_start(now) == now - timedelta(hours=24)  # the first run: a day
    old = now - timedelta(days=5)
    ReconcileRun.objects.create(started_at=old, source="schedule", status="ok")
    assert window_start(now) == now - timedelta(hours=48)  # at most two days
    last = now - timedelta(hours=25)
    ReconcileRun.objects.create(started_at=last, source="schedule", status="differences")
    ReconcileRun.objects.create(
        started_at=now - timedelta(hours=2), source="schedule", status="failed"
    )
    ReconcileRun.objects.create(started_at=now - timedelta(hours=1), source="command", status="ok")
    assert window_start(now) == last
