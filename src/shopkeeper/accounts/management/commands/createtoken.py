"""`shopkeeper createtoken --email E [--name N]`: an API token, printed alone on the last line.

Scripts take the last line: `TOKEN=$(shopkeeper createtoken --email me@example.com | tail -1)`.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.accounts.provisioning import issue_api_token
from shopkeeper.errors import DomainError


class Command(BaseCommand):
    help = "Create an API token for a user (use it as 'Authorization: Bearer <token>')."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--name", default="", help="a label, e.g. the program using it")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            raw = issue_api_token(email=options["email"], name=options["name"])
        except DomainError as error:
            raise CommandError(f"{error.detail} [{error.code}]") from None
        self.stderr.write(
            f"API token for {options['email'].strip()} (shown once; send it as "
            "'Authorization: Bearer <token>'):"
        )
        self.stdout.write(raw)
