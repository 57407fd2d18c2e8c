"""Running deferred jobs inside a test: in this thread, on this test's database connection.

procrastinate's worker runs sync tasks in threads of its own, each on its own connection, which
cannot see the rows of a test that runs inside a transaction (pytest-django's `db`). This runs
them here instead, through procrastinate's own SQL (fetch, finish, retry: locks and statuses
behave as in the worker) and each task's own retry strategy. A retry is due at once unless
`retries_wait` (then it waits for its time, like the worker). Tests of the real worker use a
transactional database and `app.run_worker(wait=False)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils import timezone
from procrastinate import jobs, sql
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector


@dataclass(frozen=True)
class JobRun:
    task_name: str
    task_kwargs: dict[str, object]
    outcome: str  # succeeded | retried | failed
    error: BaseException | None = None


def run_jobs(*, retries_wait: bool = False, limit: int = 200) -> list[JobRun]:
    """Run every due job (retries included) until none is left; what each run did."""
    connector = DjangoConnector()
    runs: list[JobRun] = []
    while len(runs) < limit:
        row = connector.execute_query_one(
            query=sql.queries["fetch_job"], queues=None, worker_id=None
        )
        if row["id"] is None:
            return runs
        job = jobs.Job.from_row(row)
        runs.append(_run(connector, job, retries_wait=retries_wait))
    raise AssertionError(f"more than {limit} job runs: a job that defers itself forever?")


def _run(connector: DjangoConnector, job: jobs.Job, *, retries_wait: bool) -> JobRun:
    task = app.tasks[job.task_name]
    assert not task.pass_context, "run_jobs runs no task that needs procrastinate's context"
    assert job.id is not None
    try:
        task(**job.task_kwargs)
    except Exception as error:
        retry = task.get_retry_exception(error, job)
        if retry is None:
            _finish(connector, job.id, "failed")
            return JobRun(job.task_name, dict(job.task_kwargs), "failed", error)
        decision = retry.retry_decision
        connector.execute_query(
            query=sql.queries["retry_job"],
            job_id=job.id,
            retry_at=decision.retry_at if retries_wait else timezone.now(),
            new_priority=decision.priority,
            new_queue_name=decision.queue,
            new_lock=decision.lock,
        )
        return JobRun(job.task_name, dict(job.task_kwargs), "retried", error)
    _finish(connector, job.id, "succeeded")
    return JobRun(job.task_name, dict(job.task_kwargs), "succeeded")


def _finish(connector: DjangoConnector, job_id: int, status: str) -> None:
    connector.execute_query(
        query=sql.queries["finish_job"], job_id=job_id, status=status, delete_job=False
    )
