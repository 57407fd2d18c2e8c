"""Every reconcile run kept: the nightly job and `shopkeeper reconcile` both write a
`ReconcileRun` as they start and finish it with the report's counts and findings, audited.

One run at a time, whoever starts it: a run holds a PostgreSQL advisory lock (session level, on
its own connection) from start to end, and a second one is refused (`ReconcileRunning`) rather
than comparing the same books twice at once. A run still `running` when the lock is free was
left by a process that died: it is marked failed before the next one starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from shopkeeper.accounts.actors import SYSTEM
from shopkeeper.audit.services import record
from shopkeeper.errors import Conflict, DomainError
from shopkeeper.reconciliation.models import ReconcileRun, RunSource, RunStatus
from shopkeeper.reconciliation.report import Report
from shopkeeper.reconciliation.services import reconcile, start_of
from shopkeeper.redaction import mask_secrets

FINDINGS_KEPT = 200  # findings stored per run; the rest are counted in `findings_omitted`
ERROR_KEPT = 4000  # characters of a failure's text
COMMAND_LINE = "Command line"  # the audit's actor label for a run someone typed

# pg_try_advisory_lock's key: any bigint no other feature uses ("reconcile" in ASCII).
_LOCK_KEY = 0x7265636F6E63696C


class ReconcileRunning(Conflict):
    code = "reconcile_running"
    title = "Another reconcile run is under way"


@dataclass(frozen=True)
class Scope:
    """What a run covers, as `reconcile()` takes it."""

    since: date | datetime | None = None  # a date: from its first moment, shop time
    order_number: str | None = None
    fix: bool = False


def run_reconcile(
    *, source: RunSource, scope: Scope, **reconcile_options: Any
) -> tuple[ReconcileRun, Report]:
    """Reconcile `scope` (with `reconcile()`'s other options) and keep the run's report.

    Stripe not answering is a `failed` run with what could not be asked, and nothing else
    recorded. Any other error (an unknown order, a bug) fails the run too, then is raised.
    Raises ReconcileRunning, writing nothing, while another run holds the lock.
    """
    with _one_run_at_a_time():
        _close_interrupted()
        run = ReconcileRun.objects.create(
            started_at=timezone.now(),
            source=source,
            since=start_of(scope.since),
            order_number=(scope.order_number or "")[:64],
            fix=scope.fix,
        )
        try:
            report = reconcile(
                since=scope.since,
                order_number=scope.order_number,
                fix=scope.fix,
                **reconcile_options,
            )
        except Exception as error:
            _finish(run, Report(fix=scope.fix), error=_error_text(error))
            raise
        _finish(run, report, error="\n".join(report.unreachable))
        return run, report


@contextmanager
def _one_run_at_a_time() -> Iterator[None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        (locked,) = cursor.fetchone() or (False,)
    if not locked:
        running = ReconcileRun.objects.filter(status=RunStatus.RUNNING).first()
        which = (
            f" (run {running.pk}, started {running.started_at:%Y-%m-%d %H:%M} UTC)"
            if running
            else ""
        )
        raise ReconcileRunning(f"Another reconcile run is under way{which}; try again later")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


def _close_interrupted() -> None:
    """Runs left `running` while nobody holds the lock ended with their process."""
    ReconcileRun.objects.filter(status=RunStatus.RUNNING).update(
        status=RunStatus.FAILED,
        finished_at=timezone.now(),
        error="Interrupted: the process running it ended before it finished",
    )


def _finish(run: ReconcileRun, report: Report, *, error: str) -> None:
    """Store the report's counts and (bounded) findings, and audit the run, in one
    transaction."""
    findings = report.as_json()["differences"]
    run.finished_at = timezone.now()
    run.status = _status(report, error)
    run.checked = report.checked
    run.differences = len(report.findings)
    run.fixed = len(report.fixed)
    run.stripe_requests = report.stripe_requests
    run.findings = findings[:FINDINGS_KEPT]
    run.findings_omitted = max(0, len(findings) - FINDINGS_KEPT)
    run.error = mask_secrets(error)[:ERROR_KEPT]
    with transaction.atomic():
        run.save()
        record(
            action="reconcile.run",
            target_type="reconcile_run",
            target_id=run.pk,
            target_label=f"reconcile run {run.pk}",
            actor=None,
            actor_label=SYSTEM if run.source == RunSource.SCHEDULE else COMMAND_LINE,
            details=_counts(run),
        )


def _error_text(error: Exception) -> str:
    if isinstance(error, DomainError):
        return error.detail
    return f"{type(error).__name__}: {error}"


def _status(report: Report, error: str) -> RunStatus:
    if error:
        return RunStatus.FAILED
    return RunStatus.DIFFERENCES if report.remaining else RunStatus.OK


def _counts(run: ReconcileRun) -> dict[str, Any]:
    return {
        "source": run.source,
        "status": run.status,
        "since": run.since.isoformat() if run.since else None,
        "order": run.order_number or None,
        "fix": run.fix,
        "checked": run.checked,
        "differences": run.differences,
        "fixed": run.fixed,
        "remaining": run.remaining,
        "stripe_requests": run.stripe_requests,
    }
