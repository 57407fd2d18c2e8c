"""The reconcile runs in `shopkeeper status` and on /metrics (shopkeeper.health).

- `reconcile_differences` (count): differences the last whole-shop run left (found and not
  fixed); a person's `reconcile --fix` that clears them clears the count;
- `reconcile_age_seconds` (count): since the last nightly run that compared the books ended;
  above OVERDUE_AFTER the schedule has missed a night (no worker? the run failing?);
- `reconcile_failed` (count): 1 when the last nightly run failed, else 0;
- `reconcile` (note): the last run in one line, and OVERDUE when the schedule is late.

None of these is a readiness check: a server whose nightly report is late serves as well.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from shopkeeper.reconciliation.history import (
    last_completed_scheduled_run,
    last_scheduled_run,
    last_whole_shop_run,
    latest_run,
)
from shopkeeper.reconciliation.models import ReconcileRun, RunStatus

OVERDUE_AFTER = timedelta(hours=26)  # a day and some slack for a long run


class NoRunYet(LookupError):
    """No run to speak of: the count is left out rather than shown as 0."""


def differences_left() -> float:
    run = last_whole_shop_run()
    if run is None:
        raise NoRunYet
    return float(run.remaining)


def age_of_last_nightly_run() -> float:
    run = last_completed_scheduled_run()
    if run is None or run.finished_at is None:
        raise NoRunYet
    return (timezone.now() - run.finished_at).total_seconds()


def last_nightly_run_failed() -> float:
    run = last_scheduled_run()
    if run is None:
        raise NoRunYet
    return 1.0 if run.status == RunStatus.FAILED else 0.0


def last_run_line() -> str:
    """E.g. `run 12 (schedule) 2026-12-02 03:00 UTC, 5 h ago: differences, 120 checked, 2
    difference(s), 0 fixed; /admin/reconcile/12`, then OVERDUE when the schedule is late."""
    run = latest_run()
    if run is None:
        return "no run yet (the nightly run is at SHOPKEEPER_RECONCILE_AT, UTC)"
    return _describe(run) + _overdue()


def _describe(run: ReconcileRun) -> str:
    counts = f"{run.checked} checked, {run.differences} difference(s), {run.fixed} fixed"
    failed = f" ({run.error.splitlines()[0][:120]})" if run.error else ""
    ago = _hours(timezone.now() - run.started_at)
    return (
        f"run {run.pk} ({run.source}) {run.started_at:%Y-%m-%d %H:%M} UTC, {ago} h ago: "
        f"{run.status}{failed}, {counts}; /admin/reconcile/{run.pk}"
    )


def _overdue() -> str:
    nightly = last_completed_scheduled_run()
    if nightly is None:
        return "; no nightly run has completed yet"
    late = timezone.now() - nightly.started_at
    if late <= OVERDUE_AFTER:
        return ""
    return f"; OVERDUE: the last nightly run that completed started {_hours(late)} h ago"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.0f}"
