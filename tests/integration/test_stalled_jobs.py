"""A dead worker's running jobs are retried; a live worker's are left alone.

Rows as a worker leaves them: a worker row with a heartbeat of some age, and a job fetched by it
(`doing`). `retry_stalled_jobs` is what the periodic `jobs.retry_stalled_jobs` runs. The scale
tier (tests/scale/) kills a real worker with SIGKILL mid-job and watches another one finish it.
"""

from __future__ import annotations

import pytest
from django.db import connection

from shopkeeper.jobs.stalled import retry_stalled_jobs
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db


def worker(*, silent_for: float) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat)"
            " VALUES (now() - make_interval(secs => %s)) RETURNING id",
            [silent_for],
        )
        return int(cursor.fetchone()[0])


def job(*, queueing_lock: str | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, queueing_lock, args)"
            " VALUES ('default', 'jobs.retry_stalled_jobs', %s, '{\"timestamp\": 0}')"
            " RETURNING id",
            [queueing_lock],
        )
        return int(cursor.fetchone()[0])


def running(job_id: int, worker_id: int | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s",
            [worker_id, job_id],
        )


def state(job_id: int) -> tuple[str, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, attempts FROM procrastinate_jobs WHERE id = %s", [job_id])
        status, attempts = cursor.fetchone()
        return status, attempts


def test_given_job_of_silent_worker_then_retried_now_and_run_again():
    dead = worker(silent_for=60)
    stalled = job()
    running(stalled, dead)

    outcome = retry_stalled_jobs(seconds_since_heartbeat=30)

    assert outcome.retried == [stalled]
    assert state(stalled) == ("todo", 1)
    assert [run.outcome for run in run_jobs()] == ["succeeded"]


def test_given_job_of_live_worker_then_left_running():
    live = worker(silent_for=2)
    busy = job()
    running(busy, live)

    outcome = retry_stalled_jobs(seconds_since_heartbeat=30)

    assert (outcome.retried, outcome.superseded, outcome.gone) == ([], [], [])
    assert state(busy) == ("doing", 0)


def test_given_job_whose_worker_row_was_pruned_then_retried():
    orphan = job()
    running(orphan, None)  # procrastinate pruned its worker: worker_id is NULL

    assert retry_stalled_jobs(seconds_since_heartbeat=30).retried == [orphan]
    assert state(orphan) == ("todo", 1)


def test_given_same_queueing_lock_already_waiting_then_stalled_job_aborted_not_retried():
    """Upstream #1446: the retry would make a second `todo` job of one queueing lock."""
    dead = worker(silent_for=60)
    stalled = job(queueing_lock="nightly")
    running(stalled, dead)
    waiting = job(queueing_lock="nightly")

    outcome = retry_stalled_jobs(seconds_since_heartbeat=30)

    assert (outcome.retried, outcome.superseded) == ([], [stalled])
    assert state(stalled) == ("aborted", 1)
    assert state(waiting) == ("todo", 0)


def test_given_two_stalled_jobs_and_a_collision_then_the_other_is_still_retried():
    dead = worker(silent_for=60)
    first = job(queueing_lock="nightly")
    running(first, dead)
    job(queueing_lock="nightly")
    second = job()
    running(second, dead)

    outcome = retry_stalled_jobs(seconds_since_heartbeat=30)

    assert (outcome.retried, outcome.superseded) == ([second], [first])
