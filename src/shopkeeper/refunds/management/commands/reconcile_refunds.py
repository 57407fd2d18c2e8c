"""`shopkeeper reconcile_refunds [--older-than SECONDS]`: settle refunds left pending.

Run it from cron (every few minutes): a refund whose Stripe answer was lost, or that Stripe
itself keeps pending, is looked up at Stripe and settled; one Stripe never received is sent
again with its same idempotency key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from shopkeeper.refunds.settlement import reconcile_pending_refunds


class Command(BaseCommand):
    help = "Ask Stripe about refunds pending longer than --older-than seconds and record it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", type=float, default=60.0, help="seconds (60)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = reconcile_pending_refunds(older_than=timedelta(seconds=options["older_than"]))
        self.stdout.write(
            f"checked {report.checked}, settled {len(report.settled)}, "
            f"resent {len(report.resent)}, still pending {len(report.still_unknown)}"
        )
