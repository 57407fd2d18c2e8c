"""`shopkeeper serve --host H --port P [--workers N]`: the production server (gunicorn)."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from shopkeeper.server.gunicorn_app import ShopkeeperServer, server_options


class Command(BaseCommand):
    help = "Serve Shopkeeper with gunicorn (a production server, not runserver)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("SHOPKEEPER_HOST", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("SHOPKEEPER_PORT", "8000"))
        )
        parser.add_argument(
            "--workers", type=int, default=int(os.environ.get("SHOPKEEPER_WORKERS", "2"))
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=int(os.environ.get("SHOPKEEPER_THREADS", "4")),
            help="threads per worker",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Settings were loaded (and production defaults refused) before we got here.
        self.check_migrations()
        # The workers fork from this process: none of them may inherit its connection.
        connections.close_all()
        mode = "production" if settings.PRODUCTION else "development"
        stripe = settings.STRIPE_API_BASE or "Stripe (api.stripe.com)"
        self.stdout.write(
            f"Shopkeeper ({mode}) on http://{options['host']}:{options['port']}/ "
            f"with {options['workers']} workers; payments via {stripe}"
        )
        ShopkeeperServer(
            server_options(
                host=options["host"],
                port=options["port"],
                workers=options["workers"],
                threads=options["threads"],
            )
        ).run()
