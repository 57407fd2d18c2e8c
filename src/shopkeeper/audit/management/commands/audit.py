"""`shopkeeper audit verify`: recompute the audit log's hash chain and report any break.

Exit status 0 with "OK n entries" when every entry matches its hash and links to the one
before; otherwise each broken entry is listed and the exit status is 1.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.audit.services import verify_audit_log


class Command(BaseCommand):
    help = "Audit log tools. `verify` checks the hash chain for edited or deleted entries."

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(dest="subcommand", required=True)
        subcommands.add_parser("verify", help="check every entry against the hash chain")

    def handle(self, *args: Any, subcommand: str, **options: Any) -> None:
        if subcommand == "verify":
            self.verify()

    def verify(self) -> None:
        count, problems = verify_audit_log()
        if not problems:
            self.stdout.write(f"OK {count} entries")
            return
        for problem in problems:
            where = f"#{problem.seq}" if problem.seq is not None else "log"
            self.stdout.write(f"BROKEN {where}: {problem.problem}")
        raise CommandError(
            f"audit log verification failed: {len(problems)} problem(s) in {count} entries",
            returncode=1,
        )
