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

from django.db import connection
from procrastinate import manager, tasks
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.types import TimeDeltaParams

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
