"""Stripe tier: the adapter against a real localstripe process (tests/conftest.py starts it)."""

from __future__ import annotations

import pytest


@pytest.fixture
def tier_refund_retry_delays() -> list[float]:
    """Retries happen (twice, as in production), after a short real wait."""
    return [0.05, 0.1]
