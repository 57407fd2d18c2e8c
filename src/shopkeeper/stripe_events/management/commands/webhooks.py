"""`shopkeeper webhooks list [--failed]`, `shopkeeper webhooks replay --failed | EVENT_ID...` and
`shopkeeper webhooks sync [--hours N]`.

A stored event is processed by the worker, retried on failure, and left `failed` after its last
try; `replay` receives stored failed events again from their stored payloads (after a fix):
each back to `received` with a new processing job, which the worker runs like any other.
`list` shows each event's status, failed tries and last error, and which ones no webhook
brought. `sync` lists Stripe's Events API over the last N hours and stores (and defers) every
event we missed (stripe_events/missed.py).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from shopkeeper.errors import DomainError
from shopkeeper.progress import TerminalProgress
from shopkeeper.stripe_events.missed import STRIPE_KEEPS_EVENTS, SyncCounts, sync_missed_events
from shopkeeper.stripe_events.models import EventSync, WebhookEvent
from shopkeeper.stripe_events.receiving import receive_failed_again

MAX_HOURS = int(STRIPE_KEEPS_EVENTS / timedelta(hours=1))  # 720: what Stripe keeps


def hours(text: str) -> int:
    """--hours: a whole number of hours, 1 to 720 (Stripe's 30 days)."""
    if not text.strip().isdigit() or not 1 <= int(text) <= MAX_HOURS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of hours from 1 to {MAX_HOURS} "
            f"(Stripe keeps 30 days of events), not {text!r}"
        )
    return int(text)


class Command(BaseCommand):
    help = "Stripe webhook events: list the stored ones, replay the failed ones, find missed ones."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        listing = subcommands.add_parser("list", help="the most recent stored events")
        listing.add_argument("--failed", action="store_true", help="only failed events")
        listing.add_argument("--limit", type=int, default=50, help="how many (50)")
        replay = subcommands.add_parser("replay", help="process failed events again (a job each)")
        replay.add_argument("--failed", action="store_true", help="every failed event")
        replay.add_argument("event_ids", nargs="*", metavar="EVENT_ID", help="these failed events")
        sync = subcommands.add_parser(
            "sync", help="store and process the events Stripe has that no webhook brought"
        )
        sync.add_argument(
            "--hours", type=hours, default=24, help="list the events of the last N hours (24)"
        )

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        if subcommand == "list":
            self.list_events(failed=options["failed"], limit=options["limit"])
        elif subcommand == "sync":
            self.sync(hours=options["hours"])
        else:
            self.replay(every_failed=options["failed"], event_ids=options["event_ids"])

    def list_events(self, *, failed: bool, limit: int) -> None:
        events = WebhookEvent.objects.order_by("-received_at", "-id")
        if failed:
            events = events.filter(status=WebhookEvent.Status.FAILED)
        for event in events[:limit]:
            line = f"{event.received_at:%Y-%m-%d %H:%M:%S} {event.status:<9} {event.type:<40} "
            line += event.event_id
            if event.source == WebhookEvent.Source.EVENTS_API:
                line += "  (missed webhook: found by webhooks sync)"
            if event.attempts and event.status != WebhookEvent.Status.PROCESSED:
                line += f"  {event.attempts} failed tr{'y' if event.attempts == 1 else 'ies'}"
            if event.error:
                line += f"  {event.error.splitlines()[0][:200]}"
            self.stdout.write(line)

    def replay(self, *, every_failed: bool, event_ids: list[str]) -> None:
        if not every_failed and not event_ids:
            raise CommandError("name the events to replay, or pass --failed for every one")
        if event_ids:
            unknown = set(event_ids) - set(
                WebhookEvent.objects.filter(
                    event_id__in=event_ids, status=WebhookEvent.Status.FAILED
                ).values_list("event_id", flat=True)
            )
            if unknown:
                raise CommandError(f"not stored as failed: {', '.join(sorted(unknown))}")
        deferred = receive_failed_again(event_ids)
        self.stdout.write(
            f"received {len(deferred)} failed event(s) again; the worker processes them"
            + (f": {', '.join(deferred)}" if deferred else "")
        )

    def sync(self, *, hours: int) -> None:
        since = timezone.now() - timedelta(hours=hours)
        terminal = TerminalProgress(sys.stdout) if self.stdout.isatty() else None

        def progress(counts: SyncCounts) -> None:
            if terminal is not None:
                terminal.note(f"listing Stripe's events: {counts.listed}, {counts.stored} new")

        try:
            counts = sync_missed_events(
                since=since,
                trigger=EventSync.Trigger.COMMAND,
                actor_label="Command line",
                progress=progress,
            )
        except DomainError as error:
            raise CommandError(f"Stripe's events could not be listed: {error.detail}") from None
        finally:
            if terminal is not None:
                terminal.finish()
        self.stdout.write(
            f"Stripe events of the last {hours} h: {counts.listed} listed, "
            f"{counts.already_stored} already stored, {counts.stored} stored now"
            + ("; the worker processes them" if counts.stored else "")
        )
