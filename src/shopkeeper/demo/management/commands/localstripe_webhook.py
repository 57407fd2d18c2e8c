"""`shopkeeper localstripe_webhook --url URL`: point localstripe's webhooks at Shopkeeper.

Signed with the configured STRIPE_WEBHOOK_SECRET, so Shopkeeper accepts the deliveries.
localstripe forgets its webhooks when it stops: `python3 dev.py run` registers one at every start.
Real Stripe is configured in its Dashboard, or with `stripe listen --forward-to` in test mode.
"""

from __future__ import annotations

import urllib.error
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from shopkeeper.demo.localstripe_server import register_webhook


class Command(BaseCommand):
    help = "Register Shopkeeper's webhook URL with localstripe (STRIPE_API_BASE)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", required=True, help="e.g. http://127.0.0.1:8000/webhooks/stripe"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        api_base = settings.STRIPE_API_BASE
        if not api_base:
            raise CommandError(
                "STRIPE_API_BASE is not set: this registers webhooks with localstripe only. "
                "For real Stripe use the Dashboard or `stripe listen --forward-to`."
            )
        try:
            register_webhook(api_base, url=options["url"], secret=settings.STRIPE_WEBHOOK_SECRET)
        except (urllib.error.URLError, OSError) as error:
            raise CommandError(f"localstripe at {api_base} did not answer: {error}") from None
        self.stdout.write(f"localstripe at {api_base} now sends webhooks to {options['url']}")
