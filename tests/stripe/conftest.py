"""Stripe tier: the adapter against a real localstripe process (tests/conftest.py starts it),
and the two other parties that talk to Stripe directly: the customer's browser, the Dashboard."""

from __future__ import annotations

import pytest

import stripe


@pytest.fixture
def tier_refund_retry_delays() -> list[float]:
    """Retries happen (twice, as in production), after a short real wait."""
    return [0.05, 0.1]


@pytest.fixture
def browser(localstripe_url: str) -> stripe.StripeClient:
    """The customer's side of Stripe: what Stripe.js would do with the client secret."""
    return stripe.StripeClient("sk_test_browser", base_addresses={"api": localstripe_url})


@pytest.fixture
def dashboard(localstripe_url: str) -> stripe.StripeClient:
    """Staff at the Stripe Dashboard: Stripe's API used directly, none of our metadata."""
    return stripe.StripeClient("sk_test_dashboard", base_addresses={"api": localstripe_url})
