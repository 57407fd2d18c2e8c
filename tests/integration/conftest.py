"""Integration tier: Django and PostgreSQL, the fake gateway; rows from tests/factories.py."""

from __future__ import annotations

import pytest


@pytest.fixture
def tier_refund_retry_delays() -> list[float]:
    """Retries happen (twice, as in production) but without waiting."""
    return [0, 0]
