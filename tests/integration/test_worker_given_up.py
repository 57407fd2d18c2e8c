"""A worker that was given up for dead and comes back keeps working.

A worker silent for longer than SHOPKEEPER_STALLED_JOB_AFTER (paused: a stopped VM, a long
stall) is pruned by the next worker that starts (procrastinate deletes its row) and its jobs are
retried (shopkeeper/jobs/stalled.py). When it wakes up, procrastinate's fetch writes its
vanished id into the job's `worker_id`, breaks `procrastinate_jobs_worker_id_fkey` and the
worker stops (found by the scale tier: a worker paused 5 s with a 3 s timeout died on waking).
Shopkeeper's job manager registers it again under its own id and fetches again.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import psycopg
import pytest
from django.db import connection
from procrastinate import exceptions, manager
from procrastinate.psycopg_connector import PsycopgConnector

from shopkeeper.jobs.fetching import LockRaceSafeJobManager

pytestmark = pytest.mark.django_db(transaction=True)


def conninfo() -> str:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.conninfo.make_conninfo(**params)


@pytest.fixture
def one_job() -> Iterator[None]:
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args)"
            " VALUES ('tests', 'given_up', '{}')"
        )
    yield


def fetch_after_being_pruned(make_manager: type[manager.JobManager]) -> object:
    """Register a worker, delete its row as procrastinate's pruning does, then fetch with it."""

    async def run() -> object:
        connector = PsycopgConnector(conninfo=conninfo(), min_size=1, max_size=2)
        await connector.open_async()
        try:
            job_manager = make_manager(connector)
            worker_id = await job_manager.register_worker()
            await job_manager.prune_stalled_workers(seconds_since_heartbeat=-1)  # all of them
            try:
                job = await job_manager.fetch_job(queues=None, worker_id=worker_id)
            except Exception as error:
                return error
            rows = await connector.execute_query_all_async(
                query="SELECT id FROM procrastinate_workers"  # type: ignore[arg-type]
            )
            assert [row["id"] for row in rows] == [worker_id]
            return job
        finally:
            await connector.close_async()

    # In a thread of its own: a test before this one in the process (Playwright's sync API)
    # may have left an event loop running in this thread, where asyncio.run() refuses to run.
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(asyncio.run(run())))
    thread.start()
    thread.join(timeout=60)
    assert outcome, "the fetch did not finish"
    return outcome[0]


def test_given_procrastinates_own_fetch_when_worker_was_pruned_then_it_raises(one_job):
    """The upstream behaviour this guards against (if procrastinate fixes it, this fails)."""
    outcome = fetch_after_being_pruned(manager.JobManager)

    assert isinstance(outcome, exceptions.ConnectorException), outcome


def test_given_shopkeepers_fetch_when_worker_was_pruned_then_registered_again_and_job_fetched(
    one_job,
):
    outcome = fetch_after_being_pruned(LockRaceSafeJobManager)

    assert getattr(outcome, "task_name", None) == "given_up", outcome
