"""`shopkeeper worker [--concurrency N] [--queue Q ...]`: run the jobs (procrastinate's worker).

Run as many workers, on as many machines, as you like: each job is taken by one of them
(`SELECT ... FOR UPDATE SKIP LOCKED`). A worker beats 3 times per `--stalled-after` seconds
(SHOPKEEPER_STALLED_JOB_AFTER, 30 s); the jobs of one silent for longer are retried by the others
(the periodic `jobs.retry_stalled_jobs`, shopkeeper/jobs/stalled.py), and a worker starting up
forgets such workers. SIGTERM or Ctrl-C lets running jobs finish.
"""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector


class Command(BaseCommand):
    help = "Run the background jobs: webhook processing, refund settlement, periodic jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--concurrency",
            type=int,
            default=int(os.environ.get("SHOPKEEPER_WORKER_CONCURRENCY", "4")),
            help="jobs run at once by this worker (threads; default 4)",
        )
        parser.add_argument(
            "--queue", action="append", dest="queues", help="only this queue (repeatable)"
        )
        parser.add_argument(
            "--name", default=os.environ.get("SHOPKEEPER_WORKER_NAME"), help="in the logs"
        )
        parser.add_argument(
            "--stalled-after",
            type=float,
            default=settings.SHOPKEEPER_STALLED_JOB_AFTER.total_seconds(),
            help="seconds without a heartbeat after which a worker counts as dead and its jobs"
            " are retried (SHOPKEEPER_STALLED_JOB_AFTER, 30)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.check_migrations()
        self.stdout.write(
            f"Shopkeeper worker: concurrency {options['concurrency']}, "
            f"queues {', '.join(options['queues'] or ['all'])}, "
            f"tasks {', '.join(sorted(app.tasks))}"
        )
        self.stdout.flush()
        connector = app.connector
        # The Django connector has no LISTEN/NOTIFY and no pool: the worker gets its own.
        worker_connector = (
            connector.get_worker_connector()
            if isinstance(connector, DjangoConnector)
            else connector
        )
        with app.replace_connector(worker_connector):
            app.run_worker(
                concurrency=options["concurrency"],
                queues=options["queues"],
                name=options["name"],
                stalled_worker_timeout=options["stalled_after"],
                update_heartbeat_interval=options["stalled_after"] / 3,
            )
