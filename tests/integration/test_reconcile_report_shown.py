"""The kept reconcile runs, shown: the back-office pages and the admin API (whoever reads orders
reads them, the viewer too; anonymous visitors are sent to sign in or get 401), `shopkeeper
status` and /metrics."""

from __future__ import annotations

import contextlib
import io
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from shopkeeper.payments.models import Payment
from shopkeeper.reconciliation.models import ReconcileRun
from tests.factories import paid_order, staff, token_for

pytestmark = pytest.mark.django_db


def reconcile_with_a_difference(fake_gateway) -> tuple[ReconcileRun, str]:
    order = paid_order(fake_gateway)
    fake_gateway.refund_outside(Payment.objects.get(order=order).intent_id, 700)
    with pytest.raises(CommandError):
        call_command("reconcile", stdout=io.StringIO(), stderr=io.StringIO())
    return ReconcileRun.objects.first(), order.number  # the newest


def test_given_a_viewer_then_the_list_shows_runs_newest_first_linked_from_the_nav(
    fake_gateway, viewer
):
    older = ReconcileRun.objects.create(started_at=timezone.now(), source="schedule", status="ok")
    run, _ = reconcile_with_a_difference(fake_gateway)

    response = viewer.get("/admin/reconcile/")

    assert response.status_code == 200
    html = response.content.decode()
    assert html.index(f'data-run="{run.pk}"') < html.index(f'data-run="{older.pk}"')
    assert 'data-reconcile-status="differences"' in html
    assert 'href="/admin/reconcile/"' in viewer.get("/admin/orders").content.decode()


def test_given_a_viewer_then_a_run_shows_its_findings_linking_to_orders(fake_gateway, viewer):
    run, number = reconcile_with_a_difference(fake_gateway)

    response = viewer.get(f"/admin/reconcile/{run.pk}")

    assert response.status_code == 200
    html = response.content.decode()
    assert f'href="/admin/orders/{number}"' in html
    assert "A refund at Stripe is not in our books" in html and "--fix: settle_refund" in html


def test_given_findings_not_kept_and_an_error_then_the_page_says_so(viewer):
    run = ReconcileRun.objects.create(
        started_at=timezone.now(),
        source="schedule",
        status="failed",
        error="listing PaymentIntents and their news: Stripe did not answer",
        findings_omitted=3,
        findings=[{"order": "bad/number", "description": "x", "fixed": False, "fix": "none"}],
    )

    html = viewer.get(f"/admin/reconcile/{run.pk}").content.decode()

    assert "Stripe did not answer" in html and "and 3 more" in html
    assert "bad/number" in html and "needs a person" in html


def test_given_an_unknown_run_or_a_bad_page_then_a_readable_page_not_a_500(viewer):
    assert viewer.get("/admin/reconcile/999").status_code == 404
    assert viewer.get("/admin/reconcile/?before=x").status_code == 422


def test_given_no_session_then_the_pages_send_to_sign_in(fake_gateway):
    run, _ = reconcile_with_a_difference(fake_gateway)
    for path in ("/admin/reconcile/", f"/admin/reconcile/{run.pk}"):
        response = Client().get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_given_a_viewer_token_then_the_api_lists_runs_by_keyset_and_shows_one(fake_gateway):
    first, number = reconcile_with_a_difference(fake_gateway)
    second = ReconcileRun.objects.create(started_at=timezone.now(), source="schedule")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(staff('viewer'))}"}

    page = Client().get("/api/admin/reconcile/runs?limit=1", **auth).json()
    assert [run["id"] for run in page["runs"]] == [second.pk]
    assert page["next_before"] == second.pk
    older = Client().get(f"/api/admin/reconcile/runs?limit=1&before={second.pk}", **auth).json()
    assert [run["id"] for run in older["runs"]] == [first.pk] and older["next_before"] is None
    (listed,) = older["runs"]
    assert (listed["status"], listed["differences"], listed["remaining"]) == ("differences", 1, 1)

    detail = Client().get(f"/api/admin/reconcile/runs/{first.pk}", **auth).json()
    (finding,) = detail["findings"]
    assert finding["order"] == number and finding["outcome"] == "--fix: settle_refund"


def test_given_no_token_or_bad_input_then_the_api_answers_problems(fake_gateway):
    assert Client().get("/api/admin/reconcile/runs").status_code == 401
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token_for(staff('viewer'))}"}
    missing = Client().get("/api/admin/reconcile/runs/999", **auth)
    assert missing.status_code == 404 and missing.json()["code"] == "reconcile_run_not_found"
    bad = Client().get("/api/admin/reconcile/runs?limit=0", **auth)
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


def test_status_prints_the_last_run_and_metrics_count_its_differences(fake_gateway, capsys, client):
    ReconcileRun.objects.create(
        started_at=timezone.now() - timedelta(hours=30),
        finished_at=timezone.now() - timedelta(hours=29),
        source="schedule",
        status="ok",
    )
    run, _ = reconcile_with_a_difference(fake_gateway)

    with contextlib.suppress(SystemExit):  # no worker in this test: its check fails
        call_command("status")

    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("reconcile "))
    assert f"run {run.pk} (command)" in line and "differences" in line
    assert "1 difference(s), 0 fixed" in line and "OVERDUE" in line
    text = client.get("/metrics").content.decode()
    assert "shopkeeper_reconcile_differences 1.0" in text
    assert "shopkeeper_reconcile_failed 0.0" in text
    age = next(line for line in text.splitlines() if line.startswith("shopkeeper_reconcile_age"))
    assert 29 * 3600 <= float(age.split()[1]) < 30 * 3600
