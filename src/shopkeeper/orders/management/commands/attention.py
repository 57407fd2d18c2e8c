"""`shopkeeper attention list` and `shopkeeper attention resolve ORDER --note TEXT [--by EMAIL]`.

Orders flagged for a person (`orders.attention`) stay flagged, and `reconcile` exits 1, until
someone has looked at the payment in the Stripe Dashboard, put it right, and resolved the flag
here with a note saying what was done. The resolution is audited.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.accounts.models import User
from shopkeeper.errors import DomainError
from shopkeeper.orders.attention import resolve_attention
from shopkeeper.orders.models import Attention


class Command(BaseCommand):
    help = "Orders flagged for a person: list them, or resolve an order's flags with a note."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        subcommands.add_parser("list", help="the open flags, oldest first")
        resolve = subcommands.add_parser("resolve", help="close an order's open flags")
        resolve.add_argument("order_number", metavar="ORDER")
        resolve.add_argument("--note", required=True, help="what was done about it")
        resolve.add_argument("--by", default="", metavar="EMAIL", help="the staff member")

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        if subcommand == "list":
            flags = Attention.objects.filter(resolved_at__isnull=True).select_related("order")
            for flag in flags.order_by("id"):
                when = flag.created_at.isoformat(timespec="seconds")
                self.stdout.write(f"{flag.order.number}  {when}  {flag.code}  {flag.detail}")
            self.stdout.write(f"{flags.count()} open flag(s).")
            return
        actor = None
        if options["by"]:
            actor = User.objects.filter(email__iexact=options["by"]).first()
            if actor is None:
                raise CommandError(f"No staff member {options['by']!r}")
        try:
            closed = resolve_attention(
                order_number=options["order_number"], actor=actor, note=options["note"]
            )
        except DomainError as error:
            raise CommandError(error.detail) from error
        self.stdout.write(f"{closed} flag(s) resolved on {options['order_number']}.")
