"""`shopkeeper createuser --email E --password P --role R`: a staff account with one role."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.accounts.permissions import Role
from shopkeeper.accounts.provisioning import create_user
from shopkeeper.errors import DomainError


class Command(BaseCommand):
    help = "Create a back-office user with one role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)
        parser.add_argument(
            "--role", required=True, help="one of: " + ", ".join(r.value for r in Role)
        )
        parser.add_argument("--name", default="", help="full name (optional)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            user = create_user(
                email=options["email"],
                password=options["password"],
                role=options["role"],
                full_name=options["name"],
            )
        except DomainError as error:
            raise CommandError(f"{error.detail} [{error.code}]") from None
        self.stdout.write(f"Created {user.role} {user.email}")
