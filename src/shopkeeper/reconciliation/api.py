"""Admin API of the kept reconcile runs: GET /api/admin/reconcile/runs (newest first, keyset by
`before`) and GET /api/admin/reconcile/runs/{run_id} (with its findings).

No `from __future__ import annotations` here: django-ninja reads the view's annotations through
the `requires` wrapper, and string annotations would be resolved in the wrong module.
"""

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Schema

from shopkeeper.accounts.access import requires
from shopkeeper.accounts.api_auth import GuardedRouter, api_auth
from shopkeeper.accounts.permissions import Permission
from shopkeeper.reconciliation import history
from shopkeeper.reconciliation.models import ReconcileRun

router = GuardedRouter(tags=["reconcile"], auth=api_auth)


class RunOut(Schema):
    id: int
    source: str  # schedule | command
    status: str  # running | ok | differences | failed
    started_at: datetime
    finished_at: datetime | None
    since: datetime | None  # None: every PaymentIntent (or one order)
    order: str | None
    fix: bool
    checked: int
    differences: int
    fixed: int
    remaining: int
    stripe_requests: int
    error: str


class RunPageOut(Schema):
    runs: list[RunOut]
    next_before: int | None  # pass as `before` for the next (older) page; None: the last


class RunDetailOut(RunOut):
    findings: list[dict[str, Any]]  # as `reconcile --json` prints "differences", + "outcome"
    findings_omitted: int  # findings beyond those kept


def run_out(run: ReconcileRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "source": run.source,
        "status": run.status,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "since": run.since,
        "order": run.order_number or None,
        "fix": run.fix,
        "checked": run.checked,
        "differences": run.differences,
        "fixed": run.fixed,
        "remaining": run.remaining,
        "stripe_requests": run.stripe_requests,
        "error": run.error,
    }


@router.get("/runs", response=RunPageOut)
@requires(Permission.ORDERS_VIEW)
def list_runs(
    request: HttpRequest,
    limit: int = Query(20, ge=1, le=100),
    before: int | None = Query(None, ge=1),
) -> dict[str, Any]:
    """Newest first, without their findings; `before`: only runs older than that run."""
    runs, next_before = history.list_runs(limit=limit, before=before)
    return {"runs": [run_out(run) for run in runs], "next_before": next_before}


@router.get("/runs/{run_id}", response=RunDetailOut)
@requires(Permission.ORDERS_VIEW)
def get_run(request: HttpRequest, run_id: int) -> dict[str, Any]:
    run = history.get_run(run_id)
    return {
        **run_out(run),
        "findings": history.finding_rows(run),
        "findings_omitted": run.findings_omitted,
    }
