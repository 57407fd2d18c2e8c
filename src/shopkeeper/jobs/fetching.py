"""Fetching a job when another worker's fetch of the same lock commits first.

procrastinate keeps one `doing` job per lock with a unique index
(`procrastinate_jobs_lock_idx_v1`), and its fetch picks the oldest `todo` job of a lock when no
job of that lock is `doing` in its snapshot. Jobs are deferred in their changes' transactions, so
an older job can commit after a newer one of its lock was fetched; a second worker then picks the
older one and its UPDATE violates the index. procrastinate's worker lets that error end it
(upstream #1241). The error only means "this lock is busy": fetch again, and the next snapshot
sees the lock's `doing` job and skips its other jobs. Proved by
tests/integration/test_job_lock_race.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from procrastinate import App, exceptions, jobs, manager

logger = logging.getLogger(__name__)

LOCK_INDEX = "procrastinate_jobs_lock_idx_v1"
FETCH_TRIES = 5  # each lost race means another worker took a lock: more than a few is unlikely


def lost_lock_race(error: BaseException) -> bool:
    """Whether a fetch failed only because another worker started a job of the same lock."""
    return isinstance(error, exceptions.UniqueViolation) and error.constraint_name == LOCK_INDEX


class LockRaceSafeJobManager(manager.JobManager):
    """procrastinate's job manager whose fetch takes a lost lock race as "try again"."""

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> jobs.Job | None:
        for attempt in range(1, FETCH_TRIES + 1):
            try:
                return await super().fetch_job(queues=queues, worker_id=worker_id)
            except exceptions.UniqueViolation as error:
                if not lost_lock_race(error):
                    raise
                logger.info("fetch %d lost a race for a job lock; fetching again", attempt)
        return None  # the locks stay busy: the worker's next poll (or NOTIFY) fetches again


def install(app: App) -> None:
    """PROCRASTINATE_ON_APP_READY: give the Django app's procrastinate app this job manager."""
    app.job_manager = LockRaceSafeJobManager(app.job_manager.connector)
