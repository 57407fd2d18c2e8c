"""`shopkeeper status`: what /readyz checks, the counts worth watching and the notes (the last
reconcile run), for a person.

Exits 1 when a check fails (the same checks as /readyz), so a cron job or a deploy script can
stop on it; a database that cannot be reached is a failed check, not a traceback.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from shopkeeper.health import read_counts, read_notes, run_checks


class Command(BaseCommand):
    help = "Readiness checks (database, ...) and counts (failed webhooks, ...)."
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        # The database first: every other check and count reads it.
        results = sorted(run_checks(), key=lambda r: r.name != "database")
        database_ok = all(r.ok for r in results if r.name == "database")
        counts = read_counts() if database_ok else {}
        notes = read_notes() if database_ok else {}
        width = max([len(name) for name in [*(r.name for r in results), *counts, *notes]] + [24])
        for result in results:
            state = "ok" if result.ok else "FAILED"
            self.stdout.write(f"{result.name:<{width}} {state:<6} {result.detail}".rstrip())
        for name, (_, value) in counts.items():
            self.stdout.write(f"{name:<{width}} {value:g}")
        for name, line in notes.items():
            self.stdout.write(f"{name:<{width}} {line}")
        self.stdout.write(f"{'stripe_rate_limit':<{width}} {_limiter_line()}")
        if not all(result.ok for result in results):
            raise SystemExit(1)


def _limiter_line() -> str:
    limit = settings.STRIPE_MAX_REQUESTS_PER_SECOND
    if limit <= 0:
        return "off (STRIPE_MAX_REQUESTS_PER_SECOND=0)"
    mode = "test mode" if settings.STRIPE_TEST_MODE else "live"
    per_endpoint = settings.STRIPE_MAX_REQUESTS_PER_SECOND_PER_ENDPOINT
    endpoint = f", {min(per_endpoint, limit)}/s an endpoint" if per_endpoint else ""
    return (
        f"{limit}/s ({mode}){endpoint}, shared in PostgreSQL; "
        f"a request waits at most {settings.STRIPE_RATE_LIMIT_MAX_WAIT:g} s"
    )
