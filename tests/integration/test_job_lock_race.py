"""Two workers fetching jobs of one lock while their jobs commit out of order: neither crashes.

procrastinate's fetch (`procrastinate_fetch_job_v2`) picks the oldest `todo` job of a lock when
no job of that lock is `doing` *in its snapshot*. Jobs are deferred in the transactions of their
changes, so a job with a lower id can commit after one with a higher id has been fetched: a
second worker then sees both `todo`, picks the lower one, and its UPDATE hits the unique index
`procrastinate_jobs_lock_idx_v1` (one `doing` job per lock). procrastinate's worker lets that
error end it (upstream #1241 is open). Shopkeeper's job manager (shopkeeper.jobs.fetching) takes
it for what it is, a lost race for a lock that is busy, and fetches again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from procrastinate import exceptions, manager
from procrastinate.contrib.django import app
from procrastinate.psycopg_connector import PsycopgConnector

from shopkeeper.jobs.fetching import LockRaceSafeJobManager

pytestmark = pytest.mark.django_db(transaction=True)

LOCK = "stripe:pi_race"


def conninfo() -> str:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.conninfo.make_conninfo(**params)


def insert_job(conn: psycopg.Connection, name: str) -> int:
    row = conn.execute(
        "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args)"
        " VALUES ('tests', %s, %s, '{}') RETURNING id",
        (name, LOCK),
    ).fetchone()
    assert row is not None
    return int(row[0])


def doing() -> list[str]:
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT task_name FROM procrastinate_jobs WHERE status = 'doing' ORDER BY id"
        )
        return [name for (name,) in rows.fetchall()]


def wait_until_blocked_on_a_lock(pid: int) -> None:
    deadline = time.monotonic() + 10
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.02)
    raise AssertionError("the second fetch never waited on the first one's index entry")


def second_fetch_while_first_commits(job_manager: manager.JobManager) -> object:
    """Job `older` commits after job `newer` was fetched (uncommitted); a second fetch races.

    Returns what the second fetch returned, or the exception it raised.
    """
    outcome: list[object] = []
    with (
        psycopg.connect(conninfo()) as change_older,
        psycopg.connect(conninfo(), autocommit=True) as change_newer,
        psycopg.connect(conninfo()) as first_worker,
    ):
        insert_job(change_older, "older")  # its change's transaction is still open
        insert_job(change_newer, "newer")  # committed
        fetched = first_worker.execute("SELECT (procrastinate_fetch_job_v2(NULL, NULL)).task_name")
        assert fetched.fetchone() == ("newer",)  # the only committed job; not committed yet
        change_older.commit()

        connector = PsycopgConnector(conninfo=conninfo(), min_size=1, max_size=1)

        async def fetch() -> None:
            await connector.open_async()
            try:
                async with connector.pool.connection() as conn:  # the pid to watch
                    pids.append(conn.info.backend_pid)
                job_manager.connector = connector
                outcome.append(await job_manager.fetch_job(queues=None, worker_id=None))  # type: ignore[arg-type]
            except Exception as error:
                outcome.append(error)
            finally:
                await connector.close_async()

        pids: list[int] = []
        second = threading.Thread(target=lambda: asyncio.run(fetch()))
        second.start()
        while not pids and second.is_alive():
            time.sleep(0.01)
        wait_until_blocked_on_a_lock(pids[0])
        first_worker.commit()  # "newer" is doing: the second fetch's "older" now collides
        second.join(timeout=20)
    assert outcome, "the second fetch did not finish"
    return outcome[0]


@pytest.fixture
def clean_jobs() -> Iterator[None]:
    yield
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute("DELETE FROM procrastinate_jobs WHERE lock = %s", (LOCK,))


def test_given_procrastinates_own_fetch_when_jobs_commit_out_of_order_then_it_raises(
    clean_jobs,
):
    """The upstream behaviour this guards against (if procrastinate fixes it, this fails)."""
    outcome = second_fetch_while_first_commits(manager.JobManager(app.connector))

    assert isinstance(outcome, exceptions.UniqueViolation)
    assert outcome.constraint_name == "procrastinate_jobs_lock_idx_v1"


def test_given_shopkeepers_fetch_when_jobs_commit_out_of_order_then_no_error_and_one_doing(
    clean_jobs,
):
    outcome = second_fetch_while_first_commits(LockRaceSafeJobManager(app.connector))

    assert outcome is None  # the lock is busy ("newer" runs); "older" waits its turn
    assert doing() == ["newer"]


def test_given_the_app_then_its_job_manager_survives_the_race():
    assert isinstance(app.job_manager, LockRaceSafeJobManager)
