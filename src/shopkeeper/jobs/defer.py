"""Deferring a job in the transaction of the change that needs it.

procrastinate's Django connector runs its INSERT on Django's own connection, so inside
`transaction.atomic()` the job row is part of the transaction: a committed change never lacks its
job and a rolled-back one never has one (not `transaction.on_commit`, which loses the job when the
process dies between the commit and the deferral). In the worker, procrastinate's app runs on a
connector of its own (a pool); jobs deferred by a running job must still join the job's
transaction, so they go through a job manager on Django's connection, never through the app's.
"""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from procrastinate import manager, tasks
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.types import TimeDeltaParams

from shopkeeper.inserts import insert_statement, insert_values, run_insert

# One job manager on Django's connection (per thread: Django's connections are thread-local).
_ON_DJANGO_CONNECTION = manager.JobManager(DjangoConnector())


class NotInTransaction(RuntimeError):
    """A job deferred outside a transaction could outlive, or miss, the change it is for."""


def defer_in_transaction(
    task: tasks.Task[Any, Any, Any],
    *,
    lock: str | None = None,
    queueing_lock: str | None = None,
    schedule_in_seconds: int | None = None,
    **task_kwargs: Any,
) -> int:
    """Insert a job for `task` in the open transaction; returns its id.

    `lock`: jobs with the same lock run one at a time, in the order they were deferred.
    """
    if not connection.in_atomic_block:
        raise NotInTransaction(f"{task.name} must be deferred inside transaction.atomic()")
    deferrer = tasks.configure_task(
        name=task.name,
        job_manager=_ON_DJANGO_CONNECTION,
        lock=lock if lock is not None else task.lock,
        queueing_lock=queueing_lock if queueing_lock is not None else task.queueing_lock,
        schedule_in=None
        if schedule_in_seconds is None
        else TimeDeltaParams(seconds=schedule_in_seconds),
        queue=task.queue,
        priority=task.priority,
    )
    return deferrer.defer(**task_kwargs)


# procrastinate's own deferral (its queries.sql `defer_jobs`: the versioned SQL function and row
# type its Python deferrer calls), fed the id of the row inserted by the same statement.
_DEFER_FOR_INSERTED = (
    "WITH inserted AS ({insert}) SELECT id, unnest(procrastinate_defer_jobs_v1(ARRAY[ROW("
    "%s, %s, %s, %s, %s, jsonb_build_object(%s, id), NULL)::procrastinate_job_to_defer_v1]))"
    " FROM inserted"
)


def insert_and_defer(
    row: models.Model, conflict: tuple[str, ...], task: tasks.Task[Any, Any, Any], id_argument: str
) -> bool:
    """Insert `row` unless a row with the same `conflict` columns exists and, in the same
    statement, defer `task` with the new row's id as `id_argument`: one statement instead of
    two, in the open transaction. False (nothing written, nothing deferred) for a twin."""
    if not connection.in_atomic_block:
        raise NotInTransaction(f"{task.name} must be deferred inside transaction.atomic()")
    insert, fields = insert_statement(type(row), conflict)
    job = [task.queue, task.name, task.priority, task.lock, task.queueing_lock, id_argument]
    return run_insert(
        row, _DEFER_FOR_INSERTED.format(insert=insert), [*insert_values(row, fields), *job]
    )
