"""`shopkeeper seed`: demo catalog, one account per role, and demo orders. Safe to run again.

`--orders N` adds N orders written straight into the database instead (demo/bulk.py), for
measuring the shop at scale: a million in minutes, with a progress bar on a terminal.
"""

from __future__ import annotations

import secrets
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.accounts.models import User
from shopkeeper.demo import bulk
from shopkeeper.demo import data as demo
from shopkeeper.errors import DomainError
from shopkeeper.progress import TerminalProgress


class Command(BaseCommand):
    help = "Load demo data: products, owner/manager/support/viewer accounts, demo orders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default=None,
            help="password of the demo accounts (default: a fixed demo password in "
            "development, a random one in production)",
        )
        parser.add_argument(
            "--no-orders", action="store_true", help="skip the demo orders (they need Stripe)"
        )
        parser.add_argument(
            "--orders",
            type=_positive,
            default=None,
            metavar="N",
            help="instead of the demo orders, add N orders with payments, ledger rows, refunds "
            "and audit chains, written in bulk without calling Stripe",
        )
        parser.add_argument(
            "--random-seed",
            type=int,
            default=1,
            help="with --orders: the seed of the generator (a run again adds other orders)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"] or (
            secrets.token_urlsafe(12) if settings.PRODUCTION else demo.DEMO_PASSWORD
        )
        try:
            self.stdout.write("Catalog:")
            demo.seed_catalog(self.stdout.write)
            self.stdout.write("Accounts:")
            demo.seed_users(self.stdout.write, password)
        except DomainError as error:
            raise CommandError(f"{error.detail} [{error.code}]") from None
        if options["orders"] is not None:
            self._bulk_orders(options["orders"], options["random_seed"])
        elif not options["no_orders"]:
            self._seed_orders()
        self.stdout.write(self._owner_login(password))

    def _seed_orders(self) -> None:
        self.stdout.write("Orders:")
        try:
            demo.seed_orders(self.stdout.write)
        except DomainError as error:
            where = settings.STRIPE_API_BASE or "Stripe (api.stripe.com)"
            raise CommandError(
                f"Demo orders need a reachable Stripe; {where} answered: {error.detail} "
                f"[{error.code}]. Start localstripe and set STRIPE_API_BASE (python3 dev.py run "
                "does both), or pass --no-orders."
            ) from None

    def _bulk_orders(self, count: int, random_seed: int) -> None:
        self.stdout.write(f"Orders: {count} in bulk")
        progress = TerminalProgress(sys.stderr) if sys.stderr.isatty() else None
        started = time.monotonic()
        try:
            counts = bulk.seed_orders_bulk(count, seed=random_seed, progress=progress)
        finally:
            if progress is not None:
                progress.finish()
        bulk.analyze()
        self.stdout.write(
            f"  {counts.orders} orders, {counts.lines} lines, {counts.payments} payments, "
            f"{counts.ledger} ledger rows, {counts.refunds} refunds, {counts.attention} flags, "
            f"{counts.audit} audit entries in {time.monotonic() - started:.1f} s"
        )

    def _owner_login(self, password: str) -> str:
        owner = User.objects.get(email=demo.OWNER_EMAIL)
        if owner.check_password(password):
            return f"Owner login: {owner.email} / {password}"
        return f"Owner login: {owner.email} (password changed since it was seeded)"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value
