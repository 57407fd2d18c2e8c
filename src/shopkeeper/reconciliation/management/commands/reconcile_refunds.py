"""`shopkeeper reconcile_refunds [--older-than SECONDS] [--json]`: an alias of `reconcile --fix`
for the payments with a refund still pending (and PaymentIntents created this very moment).

Kept for schedules written before `reconcile` existed; `reconcile` is the one implementation
(see docs/reconciliation.md). A refund whose Stripe answer was lost is settled from what Stripe
says; one Stripe never received is sent again with its same idempotency key once it has been
left alone for --older-than seconds (default SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from shopkeeper.reconciliation.management.commands.reconcile import Command as Reconcile


class Command(Reconcile):
    help = "Alias of `reconcile --fix` for payments with a refund still pending."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=float,
            default=None,
            help="seconds a refund Stripe never received is left alone before it is sent again",
        )
        parser.add_argument("--json", action="store_true", help="the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        self.run(
            as_json=options["json"],
            since=timezone.now(),  # reconcile always adds payments with a refund pending
            fix=True,
            in_flight=None if older_than is None else timedelta(seconds=older_than),
        )
