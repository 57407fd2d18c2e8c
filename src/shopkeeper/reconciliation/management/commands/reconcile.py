"""`shopkeeper reconcile [--since DATE|MOMENT|24h] [--order NUMBER] [--fix] [--json]`

Compares our books with Stripe's and reports every difference; with --fix, records what Stripe
proves and settles refunds left in doubt. Exit status: 0 nothing remains, 1 differences remain,
2 Stripe could not be asked (or a usage error, or another run under way). Each run is kept
(reconciliation.runs), shown at /admin/reconcile/ and by `shopkeeper status`. See
docs/reconciliation.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import date, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from shopkeeper.errors import NotFound
from shopkeeper.progress import TerminalProgress
from shopkeeper.reconciliation.models import RunSource
from shopkeeper.reconciliation.report import EXIT_UNREACHABLE, Report
from shopkeeper.reconciliation.runs import ReconcileRunning, Scope, run_reconcile

DURATION = re.compile(r"(\d+)([mhd])")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def since_arg(text: str) -> date | datetime:
    """A date (its first moment, shop time), a moment, or how long ago: `24h`, `2d`, `90m`."""
    duration = DURATION.fullmatch(text.strip())
    if duration:
        amount, unit = duration.groups()
        return timezone.now() - timedelta(**{UNITS[unit]: int(amount)})
    try:
        if len(text) == len("YYYY-MM-DD"):
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"want a date as YYYY-MM-DD, a moment as YYYY-MM-DDTHH:MM or a duration such as "
            f"24h, 2d or 90m, not {text!r}"
        ) from None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment)


class Command(BaseCommand):
    help = (
        "Compare the ledger with Stripe and report every difference; "
        "with --fix, record what Stripe proves."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=since_arg,
            help="PaymentIntents created, and Stripe news, since this date (YYYY-MM-DD), "
            "moment (YYYY-MM-DDTHH:MM) or long ago (24h, 2d, 90m)",
        )
        parser.add_argument("--order", dest="order_number", help="only this order's payments")
        parser.add_argument("--fix", action="store_true", help="record what Stripe proves")
        parser.add_argument("--json", action="store_true", help="the report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        self.run(
            as_json=options["json"],
            since=options["since"],
            order_number=options["order_number"],
            fix=options["fix"],
        )

    def run(self, *, as_json: bool, in_flight: timedelta | None = None, **scope: Any) -> None:
        """Reconcile, keep the run, write the report, and leave with the report's exit
        status."""
        # The bar redraws one line of the terminal and is cleared before the report.
        progress = TerminalProgress(sys.stdout) if self.stdout.isatty() else None
        try:
            listed = None
            if progress is not None:
                note = progress.note
                listed = lambda count: note(f"listing Stripe: {count} objects")  # noqa: E731
            run, report = run_reconcile(
                source=RunSource.COMMAND,
                scope=Scope(**scope),
                progress=progress,
                listed=listed,
                in_flight=in_flight,
            )
        except (NotFound, ReconcileRunning) as error:
            raise CommandError(error.detail, returncode=EXIT_UNREACHABLE) from None
        finally:
            if progress is not None:
                progress.finish()
        if as_json:
            self.stdout.write(json.dumps({**report.as_json(), "run_id": run.pk}, indent=2))
        else:
            self.stdout.write(report.as_text(), ending="")
        self.stderr.write(f"Kept as reconcile run {run.pk} (shopkeeper status, /admin/reconcile/).")
        if report.exit_code:
            raise CommandError(_verdict(report), returncode=report.exit_code)


def _verdict(report: Report) -> str:
    if report.unreachable:
        return f"Stripe could not be asked about everything ({len(report.unreachable)} not checked)"
    return f"{len(report.remaining)} difference(s) remain"
