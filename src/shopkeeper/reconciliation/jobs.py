"""The nightly reconcile: every day at SHOPKEEPER_RECONCILE_AT (UTC) the worker compares the
books with Stripe's over what changed since the last scheduled run that finished, and keeps the
report (reconciliation.runs). With SHOPKEEPER_RECONCILE_FIX=1 it records what Stripe proves, as
`reconcile --fix` does.

The window starts where the previous completed scheduled run started (so the two overlap, and
nothing created while it ran is missed), at most LONGEST_WINDOW ago (a schedule that stopped
for a week does not become a whole-account run at 3 a.m.: run `reconcile --since` by hand), and
FIRST_WINDOW ago for the first run. procrastinate defers the periodic job once per tick whatever
the number of workers; its queueing lock keeps at most one waiting, its lock one running, and
the run's advisory lock keeps it apart from a `reconcile` someone typed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone
from procrastinate.contrib.django import app

from shopkeeper.reconciliation.history import last_completed_scheduled_run
from shopkeeper.reconciliation.models import RunSource
from shopkeeper.reconciliation.runs import ReconcileRunning, Scope, run_reconcile

logger = logging.getLogger(__name__)

FIRST_WINDOW = timedelta(hours=24)
LONGEST_WINDOW = timedelta(hours=48)


def daily_cron(at: tuple[int, int]) -> str:
    """procrastinate's cron line for every day at (hour, minute), UTC."""
    hour, minute = at
    return f"{minute} {hour} * * *"


@app.periodic(cron=daily_cron(settings.SHOPKEEPER_RECONCILE_AT), periodic_id="nightly")
@app.task(
    name="reconciliation.nightly_reconcile",
    queue="reconcile",
    lock="reconcile",
    queueing_lock="reconcile",
)
def nightly_reconcile(timestamp: int) -> None:
    """Reconcile since the last scheduled run (procrastinate passes the tick's Unix time)."""
    now = timezone.now()
    scope = Scope(since=window_start(now), fix=settings.SHOPKEEPER_RECONCILE_FIX)
    try:
        run, _ = run_reconcile(source=RunSource.SCHEDULE, scope=scope)
    except ReconcileRunning as error:  # someone's `reconcile` holds the books: tomorrow's covers
        logger.warning("Nightly reconcile skipped: %s", error.detail)
        return
    logger.info(
        "Nightly reconcile (run %s): %s, %s checked, %s difference(s), %s fixed",
        run.pk,
        run.status,
        run.checked,
        run.differences,
        run.fixed,
    )


def window_start(now: datetime) -> datetime:
    previous = last_completed_scheduled_run()
    if previous is None:
        return now - FIRST_WINDOW
    return max(previous.started_at, now - LONGEST_WINDOW)
