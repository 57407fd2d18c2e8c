"""The worker's checks and counts for /readyz, /metrics and `shopkeeper status` (shopkeeper.health).

Read from procrastinate's own tables, so they speak for every worker of the installation:
- `worker`: some worker's heartbeat (procrastinate beats every few seconds) is at most
  SHOPKEEPER_WORKER_HEARTBEAT_MAX_AGE seconds old;
- `queue`: at most SHOPKEEPER_QUEUE_DEPTH_MAX jobs are due and waiting;
- counts: `queue_depth` (due and waiting), `jobs_failed` (failed for good), `jobs_running`.
"""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from shopkeeper.health import Verdict

_DUE = "status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())"


def _scalar(sql: str) -> float | None:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return None if row is None or row[0] is None else float(row[0])


def worker_heartbeat() -> Verdict:
    age = _scalar(
        "SELECT EXTRACT(EPOCH FROM now() - max(last_heartbeat)) FROM procrastinate_workers"
    )
    limit = settings.SHOPKEEPER_WORKER_HEARTBEAT_MAX_AGE
    if age is None:
        return Verdict(False, "no worker has a heartbeat (start `shopkeeper worker`)")
    if age > limit:
        return Verdict(False, f"last heartbeat {age:.0f} s ago (more than {limit:.0f} s)")
    return Verdict(True, f"last heartbeat {age:.0f} s ago")


def queue_depth() -> float:
    return _scalar(f"SELECT count(*) FROM procrastinate_jobs WHERE {_DUE}") or 0.0


def queue_not_backed_up() -> Verdict:
    depth = int(queue_depth())
    limit = settings.SHOPKEEPER_QUEUE_DEPTH_MAX
    if depth > limit:
        return Verdict(False, f"{depth} jobs due and waiting (more than {limit})")
    return Verdict(True, f"{depth} jobs due and waiting")


def jobs_failed() -> float:
    return _scalar("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'") or 0.0


def jobs_running() -> float:
    return _scalar("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'") or 0.0
