"""Fetching a job when another worker's fetch of the same lock commits first.

procrastinate keeps one `doing` job per lock with a unique index
(`procrastinate_jobs_lock_idx_v1`), and its fetch picks the oldest `todo` job of a lock when no
job of that lock is `doing` in its snapshot. Jobs are deferred in their changes' transactions, so
an older job can commit after a newer one of its lock was fetched; a second worker then picks the
older one and its UPDATE violates the index. procrastinate's worker lets that error end it
(upstream #1241). The error only means "this lock is busy": fetch again, and the next snapshot
sees the lock's `doing` job and skips its other jobs. Proved by
tests/integration/test_job_lock_race.py.

A worker silent for longer than the stalled timeout (paused, not dead) is pruned by the next
worker that starts, and its jobs are retried (shopkeeper/jobs/stalled.py). Waking up, its fetch
writes its vanished id into `procrastinate_jobs.worker_id`, breaks `WORKER_FOREIGN_KEY`, and
procrastinate's worker stops. The fetch here registers it again under its own id (its heartbeats
then land again) and fetches again. Proved by tests/integration/test_worker_given_up.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import psycopg
from procrastinate import App, exceptions, jobs, manager

logger = logging.getLogger(__name__)

LOCK_INDEX = "procrastinate_jobs_lock_idx_v1"
WORKER_FOREIGN_KEY = "procrastinate_jobs_worker_id_fkey"
REGISTER_AGAIN = """
INSERT INTO procrastinate_workers (id, last_heartbeat) OVERRIDING SYSTEM VALUE
VALUES (%(worker_id)s, now()) ON CONFLICT (id) DO NOTHING
"""
FETCH_TRIES = 5  # each lost race means another worker took a lock: more than a few is unlikely


def lost_lock_race(error: BaseException) -> bool:
    """Whether a fetch failed only because another worker started a job of the same lock."""
    return isinstance(error, exceptions.UniqueViolation) and error.constraint_name == LOCK_INDEX


def given_up_for_dead(error: BaseException) -> bool:
    """Whether a fetch failed only because this worker's row was pruned meanwhile."""
    cause = error.__cause__
    return (
        isinstance(error, exceptions.ConnectorException)
        and isinstance(cause, psycopg.errors.ForeignKeyViolation)
        and cause.diag.constraint_name == WORKER_FOREIGN_KEY
    )


class LockRaceSafeJobManager(manager.JobManager):
    """procrastinate's job manager whose fetch takes a lost lock race as "try again", and a
    worker given up for dead as "register it again"."""

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> jobs.Job | None:
        for attempt in range(1, FETCH_TRIES + 1):
            try:
                return await super().fetch_job(queues=queues, worker_id=worker_id)
            except exceptions.UniqueViolation as error:
                if not lost_lock_race(error):
                    raise
                logger.info("fetch %d lost a race for a job lock; fetching again", attempt)
            except exceptions.ConnectorException as error:
                if not given_up_for_dead(error):
                    raise
                logger.warning(
                    "Worker %s was given up for dead (no heartbeat for longer than the stalled"
                    " timeout) and its running jobs retried elsewhere; registering it again",
                    worker_id,
                )
                await self.connector.execute_query_async(
                    query=REGISTER_AGAIN,
                    worker_id=worker_id,
                )
        return None  # the locks stay busy: the worker's next poll (or NOTIFY) fetches again


def install(app: App) -> None:
    """PROCRASTINATE_ON_APP_READY: give the Django app's procrastinate app this job manager."""
    app.job_manager = LockRaceSafeJobManager(app.job_manager.connector)
