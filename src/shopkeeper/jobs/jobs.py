"""The jobs app's own periodic task: retry the jobs of dead workers (shopkeeper/jobs/stalled.py).

Every worker schedules it (procrastinate defers one run per tick for the whole installation);
it runs on the default queue, so a worker limited to other queues (`--queue`) does not run it.
"""

from __future__ import annotations

from django.conf import settings
from procrastinate.contrib.django import app

from shopkeeper.jobs.stalled import retry_stalled_jobs


@app.periodic(cron=settings.SHOPKEEPER_STALLED_JOB_CHECK_CRON)
@app.task(name="jobs.retry_stalled_jobs", queue="default")
def retry_stalled(timestamp: int) -> None:
    retry_stalled_jobs(
        seconds_since_heartbeat=settings.SHOPKEEPER_STALLED_JOB_AFTER.total_seconds()
    )
