"""Stalled jobs: a job whose worker died mid-way (SIGKILL, power cut, out of memory) runs again.

A worker beats every few seconds (`procrastinate_workers.last_heartbeat`). One whose heartbeat
is older than SHOPKEEPER_STALLED_JOB_AFTER is dead, and so are its `doing` jobs: procrastinate
3.10 finds them (`select_stalled_jobs_by_heartbeat`; a worker row already pruned leaves its
jobs with no worker) but does not retry them by itself. `retry_stalled_jobs`, run by the
periodic task in `shopkeeper/jobs/jobs.py`, puts each back to `todo`, due now, for any live
worker. A job's effects are committed with their own markers (an event's status, a refund's
key), so a job retried after its effect was committed finds it done and does nothing.

Two outcomes are not retries:
- another job with the same `queueing_lock` is already waiting (upstream issue #1446: the
  retry would break `procrastinate_jobs_queueing_lock_idx_v1`): that job does the same work,
  so the stalled one is ended `aborted`;
- the job is no longer `doing` (another worker's check retried it first): left alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from procrastinate import exceptions, sql
from procrastinate.contrib.django.django_connector import DjangoConnector

logger = logging.getLogger(__name__)

QUEUEING_LOCK_INDEX = "procrastinate_jobs_queueing_lock_idx_v1"


@dataclass
class StalledJobs:
    """What one check did, by job id."""

    retried: list[int] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)  # a same-queueing-lock job waits
    gone: list[int] = field(default_factory=list)  # no longer `doing` when retried


def retry_stalled_jobs(*, seconds_since_heartbeat: float) -> StalledJobs:
    """Put back to `todo` every running job of a worker silent for that many seconds."""
    connector = DjangoConnector()
    rows = connector.execute_query_all(
        query=sql.queries["select_stalled_jobs_by_heartbeat"],
        queue=None,
        task_name=None,
        seconds_since_heartbeat=seconds_since_heartbeat,
    )
    outcome = StalledJobs()
    for row in rows:
        job_id = int(row["id"])
        try:
            with transaction.atomic():  # a refused retry leaves the next ones possible
                connector.execute_query(
                    query=sql.queries["retry_job"],
                    job_id=job_id,
                    retry_at=None,  # due now
                    new_priority=None,
                    new_queue_name=None,
                    new_lock=None,
                )
        except exceptions.UniqueViolation as error:
            if error.constraint_name != QUEUEING_LOCK_INDEX:
                raise
            _end_superseded(connector, job_id)
            outcome.superseded.append(job_id)
            logger.warning(
                "Stalled job %s (%s) ended: a job with its queueing lock %r is already waiting",
                job_id,
                row["task_name"],
                row["queueing_lock"],
            )
        except exceptions.ConnectorException:
            if _still_doing(connector, job_id):
                raise
            outcome.gone.append(job_id)
        else:
            outcome.retried.append(job_id)
            logger.warning(
                "Stalled job %s (%s, worker %s silent for more than %g s) retried",
                job_id,
                row["task_name"],
                row["worker_id"],
                seconds_since_heartbeat,
            )
    return outcome


def _end_superseded(connector: DjangoConnector, job_id: int) -> None:
    connector.execute_query(
        query=sql.queries["finish_job"], job_id=job_id, status="aborted", delete_job=False
    )


def _still_doing(connector: DjangoConnector, job_id: int) -> bool:
    rows = connector.execute_query_all(query=sql.queries["get_job_status"], job_id=job_id)
    return any(row["status"] == "doing" for row in rows)
