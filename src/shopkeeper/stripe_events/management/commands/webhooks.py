"""`shopkeeper webhooks list [--failed]` and `shopkeeper webhooks replay --failed | EVENT_ID...`.

A stored event is processed by the worker, retried on failure, and left `failed` after its last
try; `replay` receives stored failed events again from their stored payloads (after a fix):
each back to `received` with a new processing job, which the worker runs like any other.
`list` shows each event's status, failed tries and last error.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.stripe_events.models import WebhookEvent
from shopkeeper.stripe_events.receiving import receive_failed_again


class Command(BaseCommand):
    help = "Stripe webhook events: list the stored ones, replay the failed ones."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        listing = subcommands.add_parser("list", help="the most recent stored events")
        listing.add_argument("--failed", action="store_true", help="only failed events")
        listing.add_argument("--limit", type=int, default=50, help="how many (50)")
        replay = subcommands.add_parser("replay", help="process failed events again (a job each)")
        replay.add_argument("--failed", action="store_true", help="every failed event")
        replay.add_argument("event_ids", nargs="*", metavar="EVENT_ID", help="these failed events")

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        if subcommand == "list":
            self.list_events(failed=options["failed"], limit=options["limit"])
        else:
            self.replay(every_failed=options["failed"], event_ids=options["event_ids"])

    def list_events(self, *, failed: bool, limit: int) -> None:
        events = WebhookEvent.objects.order_by("-received_at", "-id")
        if failed:
            events = events.filter(status=WebhookEvent.Status.FAILED)
        for event in events[:limit]:
            line = f"{event.received_at:%Y-%m-%d %H:%M:%S} {event.status:<9} {event.type:<40} "
            line += event.event_id
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
