"""Reading the kept reconcile runs: the list and a run's findings (the page and the API), the
last runs (the nightly window, `shopkeeper status`, /metrics)."""

from __future__ import annotations

from typing import Any

from shopkeeper.errors import NotFound
from shopkeeper.reconciliation.models import COMPLETED, ReconcileRun, RunSource, RunStatus
from shopkeeper.reconciliation.report import outcome_of


class ReconcileRunNotFound(NotFound):
    code = "reconcile_run_not_found"
    title = "No such reconcile run"


def list_runs(*, limit: int, before: int | None = None) -> tuple[list[ReconcileRun], int | None]:
    """Newest first, `limit` of them, older than run `before`; and the `before` of the next
    page (None on the last). The findings are left out: a list needs only the counts."""
    rows = ReconcileRun.objects.defer("findings").order_by("-id")
    if before is not None:
        rows = rows.filter(id__lt=before)
    page = list(rows[: limit + 1])
    return page[:limit], (page[limit - 1].pk if len(page) > limit else None)


def get_run(run_id: int) -> ReconcileRun:
    run = ReconcileRun.objects.filter(pk=run_id).first()
    if run is None:
        raise ReconcileRunNotFound(f"No reconcile run {run_id}")
    return run


def finding_rows(run: ReconcileRun) -> list[dict[str, Any]]:
    """The run's findings as `reconcile --json` prints them, each with what became of it."""
    return [
        {
            **finding,
            "outcome": outcome_of(
                fixed=bool(finding.get("fixed")), fix=str(finding.get("fix", "")), fixing=run.fix
            ),
        }
        for finding in run.findings
    ]


def last_completed_scheduled_run() -> ReconcileRun | None:
    """The last nightly run that compared the books (ok or differences): where the next
    nightly window starts, and how late the schedule is."""
    completed = ReconcileRun.objects.filter(source=RunSource.SCHEDULE, status__in=COMPLETED)
    return completed.order_by("-started_at", "-id").first()


def last_whole_shop_run() -> ReconcileRun | None:
    """The last run over the whole shop (not one `--order`) that compared the books: what is
    known to differ now."""
    completed = ReconcileRun.objects.filter(order_number="", status__in=COMPLETED)
    return completed.order_by("-id").first()


def last_scheduled_run() -> ReconcileRun | None:
    """The last nightly run that ended, however it ended."""
    ended = ReconcileRun.objects.filter(source=RunSource.SCHEDULE).exclude(status=RunStatus.RUNNING)
    return ended.order_by("-id").first()


def latest_run() -> ReconcileRun | None:
    return ReconcileRun.objects.order_by("-id").first()
