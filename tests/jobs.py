"""Running deferred jobs inside a test: in this thread, on this test's database connection.

procrastinate's worker runs sync tasks in threads of its own, each on its own connection, which
cannot see the rows of a test that runs inside a transaction (pytest-django's `db`). This runs
them here instead, through procrastinate's own SQL (fetch, finish, retry: locks and statuses
behave as in the worker) and each task's own retry strategy. A retry is due at once unless
`retries_wait` (then it waits for its time, like the worker; see `seconds_later`). Tests of the
real worker use a transactional database and `app.run_worker(wait=False)`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.db import connections
from django.utils import timezone
from procrastinate import exceptions, jobs, sql
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector

from shopkeeper.jobs.fetching import FETCH_TRIES, lost_lock_race

EMAIL = "email"  # the customer e-mails' queue (shopkeeper.notifications.jobs)


@dataclass(frozen=True)
class JobRun:
    task_name: str
    task_kwargs: dict[str, object]
    outcome: str  # succeeded | retried | failed
    error: BaseException | None = None


def run_jobs(
    *,
    retries_wait: bool = False,
    seconds_later: float = 0,
    limit: int = 200,
    emails: bool = False,
    queues: list[str] | None = None,
) -> list[JobRun]:
    """Run every due job (retries included) until none is left; what each run did.

    `seconds_later`: first make due the jobs scheduled up to that many seconds from now, as if
    that much time had passed (once, before running any). Customer e-mails (queue `email`,
    owed by most state changes) are left waiting unless `emails`: then they run too, so a
    test of other jobs sees only those. `queues`: only the jobs of these queues (a worker
    started with `--queue`), whatever `emails` says.
    """
    if queues is None:
        queues = None if emails else sorted({t.queue for t in app.tasks.values()} - {EMAIL})
    connector = DjangoConnector()
    if seconds_later:
        connector.execute_query(
            query=(
                "UPDATE procrastinate_jobs SET scheduled_at = NULL WHERE status = 'todo'"
                " AND scheduled_at <= %(until)s"
            ),
            until=timezone.now() + timedelta(seconds=seconds_later),
        )
    runs: list[JobRun] = []
    lost_races = 0
    while len(runs) < limit:
        try:
            row = connector.execute_query_one(
                query=sql.queries["fetch_job"], queues=queues, worker_id=None
            )
        except exceptions.UniqueViolation as error:
            # Another thread took the lock of the job we picked (as between two workers):
            # fetch again, as shopkeeper.jobs.fetching does in the worker.
            if not lost_lock_race(error) or lost_races == FETCH_TRIES:
                raise
            lost_races += 1
            continue
        if row["id"] is None:
            return runs
        if isinstance(row["args"], str):  # Django's adapters load jsonb as text
            row["args"] = json.loads(row["args"])
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
            retry_at=decision.retry_at if retries_wait else None,  # None: due now
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


@contextmanager
def running_worker(*, queues: list[str] | None = None) -> Iterator[None]:
    """procrastinate's own worker, in a thread, for the duration: what `shopkeeper worker` runs.

    For tests whose changes are committed (a transactional database, a live server): the
    worker's connections see only committed rows. Polls every 0.1 s besides LISTEN/NOTIFY.
    The jobs run in one executor thread whose database connection is closed at the end (else it
    outlives the test and keeps the test database from being dropped).
    """
    loop = asyncio.new_event_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="procrastinate-job")
    loop.set_default_executor(executor)
    started = threading.Event()
    stopped: list[BaseException] = []
    task: asyncio.Task[None] | None = None

    async def work() -> None:
        nonlocal task
        task = asyncio.current_task()
        connector = app.connector.get_worker_connector()  # type: ignore[attr-defined]
        with app.replace_connector(connector):
            async with app.open_async():
                started.set()
                await app.run_worker_async(
                    queues=queues,
                    install_signal_handlers=False,
                    fetch_job_polling_interval=0.1,
                    name="tests",
                )

    def run() -> None:
        try:
            loop.run_until_complete(work())
        except asyncio.CancelledError:
            pass
        except BaseException as error:
            stopped.append(error)
        finally:
            started.set()
            connections.close_all()
            executor.submit(connections.close_all).result(timeout=30)
            executor.shutdown(wait=True)
            loop.close()

    thread = threading.Thread(target=run, name="procrastinate-worker", daemon=True)
    thread.start()
    started.wait(timeout=30)
    try:
        yield
    finally:
        if task is not None:
            loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=30)
    assert not stopped, f"the worker stopped: {stopped[0]!r}"
