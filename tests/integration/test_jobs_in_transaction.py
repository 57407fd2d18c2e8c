"""A job is deferred in the transaction of the change that needs it (shopkeeper.jobs.defer):
committed together, or rolled back together; never deferred outside a transaction."""

from __future__ import annotations

import json
import threading

import psycopg
import pytest
from django import db
from django.contrib.auth.models import Group
from django.db import connection, transaction
from procrastinate.contrib.django import app
from procrastinate.contrib.django.models import ProcrastinateJob

from shopkeeper.jobs.defer import NotInTransaction, defer_in_transaction, insert_and_defer
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db(transaction=True)

NAMED: list[str] = []


@app.task(name="tests.name_group", queue="tests")
def name_group(group_id: int, name: str) -> None:
    NAMED.append(name)
    Group.objects.filter(pk=group_id).update(name=name)


class Boom(Exception):
    pass


def jobs_seen_by_another_connection() -> list[tuple[str, dict[str, object]]]:
    """What a worker (its own connection) would find: committed rows only."""
    settings = connection.get_connection_params()
    with psycopg.connect(**settings) as other:
        rows = other.execute("SELECT task_name, args FROM procrastinate_jobs ORDER BY id")
        # Django's psycopg adapters (in the connection parameters) load jsonb as text.
        return [(task_name, json.loads(args)) for task_name, args in rows.fetchall()]


def test_given_change_committed_then_its_job_row_was_committed_with_it():
    with transaction.atomic():
        group = Group.objects.create(name="new")
        job_id = defer_in_transaction(name_group, group_id=group.pk, name="renamed")
        # Inside the transaction: not visible to a worker yet.
        assert jobs_seen_by_another_connection() == []

    assert jobs_seen_by_another_connection() == [
        ("tests.name_group", {"group_id": group.pk, "name": "renamed"})
    ]
    assert ProcrastinateJob.objects.get(pk=job_id).status == "todo"


def test_given_change_rolled_back_then_no_job_row():
    with pytest.raises(Boom), transaction.atomic():
        group = Group.objects.create(name="new")
        defer_in_transaction(name_group, group_id=group.pk, name="renamed")
        raise Boom

    assert not Group.objects.exists()
    assert not ProcrastinateJob.objects.exists()
    assert jobs_seen_by_another_connection() == []


def test_given_savepoint_rolled_back_then_its_job_goes_with_it():
    with transaction.atomic():
        kept = Group.objects.create(name="kept")
        defer_in_transaction(name_group, group_id=kept.pk, name="kept-job")
        with pytest.raises(Boom), transaction.atomic():
            defer_in_transaction(name_group, group_id=kept.pk, name="dropped-job")
            raise Boom

    assert [args["name"] for _, args in jobs_seen_by_another_connection()] == ["kept-job"]


def test_given_no_transaction_when_deferring_then_refused():
    with pytest.raises(NotInTransaction):
        defer_in_transaction(name_group, group_id=1, name="x")

    assert not ProcrastinateJob.objects.exists()


def test_given_committed_job_when_the_real_worker_runs_then_done_once():
    NAMED.clear()
    with transaction.atomic():
        group = Group.objects.create(name="new")
        defer_in_transaction(name_group, group_id=group.pk, name="by-worker")
    connector = app.connector.get_worker_connector()  # type: ignore[attr-defined]

    failures: list[BaseException] = []

    def work() -> None:
        # In a thread of its own: a session-scoped Playwright (browser tier, same xdist worker)
        # keeps an event loop running in the main thread, where asyncio.run() is refused.
        try:
            with app.replace_connector(connector):
                app.run_worker(
                    wait=False, queues=["tests"], install_signal_handlers=False, listen_notify=False
                )
        except BaseException as error:
            failures.append(error)
        finally:
            db.connections.close_all()

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(60)
    assert not worker.is_alive() and not failures, failures

    assert Group.objects.get(pk=group.pk).name == "by-worker"
    assert NAMED == ["by-worker"]
    # The worker's periodic deferrer adds its own jobs (jobs.retry_stalled_jobs); ours ran once.
    assert ProcrastinateJob.objects.get(task_name="tests.name_group").status == "succeeded"
    assert [run for run in run_jobs() if run.task_name == "tests.name_group"] == []


MARKED: list[int] = []


@app.task(name="tests.mark_group", queue="tests", lock="marks", priority=3)
def mark_group(group_id: int) -> None:
    MARKED.append(group_id)


def test_given_a_row_inserted_and_deferred_in_one_statement_then_both_commit_and_the_job_runs():
    with transaction.atomic():
        group = Group(name="outbox")
        assert insert_and_defer(group, ("name",), mark_group, id_argument="group_id")
        assert jobs_seen_by_another_connection() == []

    assert Group.objects.get(pk=group.pk).name == "outbox"
    assert jobs_seen_by_another_connection() == [("tests.mark_group", {"group_id": group.pk})]
    job = ProcrastinateJob.objects.get()
    assert (job.queue_name, job.lock, job.priority, job.status) == ("tests", "marks", 3, "todo")
    MARKED.clear()
    run_jobs()
    assert [group.pk] == MARKED


def test_given_its_twin_exists_then_nothing_inserted_and_nothing_deferred():
    Group.objects.create(name="outbox")
    with transaction.atomic():
        assert not insert_and_defer(Group(name="outbox"), ("name",), mark_group, "group_id")

    assert Group.objects.count() == 1
    assert not ProcrastinateJob.objects.exists()


def test_given_the_insert_and_defer_rolled_back_then_neither_stays():
    with pytest.raises(Boom), transaction.atomic():
        insert_and_defer(Group(name="outbox"), ("name",), mark_group, "group_id")
        raise Boom

    assert not Group.objects.exists() and not ProcrastinateJob.objects.exists()


def test_given_no_transaction_when_inserting_and_deferring_then_refused():
    with pytest.raises(NotInTransaction):
        insert_and_defer(Group(name="outbox"), ("name",), mark_group, "group_id")
    assert not Group.objects.exists()
