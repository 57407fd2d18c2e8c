"""`shopkeeper seed`: demo catalog, one account per role, and demo orders. Safe to run again."""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.accounts.models import User
from shopkeeper.demo import data as demo
from shopkeeper.errors import DomainError


class Command(BaseCommand):
    help = "Load demo data: products, owner/manager/support/viewer accounts, demo orders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default=None,
            help="password of the demo accounts (default: a fixed demo password in "
            "development, a random one in production)",
        )
        parser.add_argument(
            "--no-orders", action="store_true", help="skip the demo orders (they need Stripe)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"] or (
            secrets.token_urlsafe(12) if settings.PRODUCTION else demo.DEMO_PASSWORD
        )
        try:
            self.stdout.write("Catalog:")
            demo.seed_catalog(self.stdout.write)
            self.stdout.write("Accounts:")
            demo.seed_users(self.stdout.write, password)
        except DomainError as error:
            raise CommandError(f"{error.detail} [{error.code}]") from None
        if not options["no_orders"]:
            self._seed_orders()
        self.stdout.write(self._owner_login(password))

    def _seed_orders(self) -> None:
        self.stdout.write("Orders:")
        try:
            demo.seed_orders(self.stdout.write)
        except DomainError as error:
            where = settings.STRIPE_API_BASE or "Stripe (api.stripe.com)"
            raise CommandError(
                f"Demo orders need a reachable Stripe; {where} answered: {error.detail} "
                f"[{error.code}]. Start localstripe and set STRIPE_API_BASE (python3 dev.py run "
                "does both), or pass --no-orders."
            ) from None

    def _owner_login(self, password: str) -> str:
        owner = User.objects.get(email=demo.OWNER_EMAIL)
        if owner.check_password(password):
            return f"Owner login: {owner.email} / {password}"
        return f"Owner login: {owner.email} (password changed since it was seeded)"
