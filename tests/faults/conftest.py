"""Faults tier: the Stripe adapter behind a proxy that loses, delays or refuses its traffic."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.proxy import CLIENT_TIMEOUT, StripeFaultProxy


@pytest.fixture
def tier_refund_retry_delays() -> list[float]:
    """Retries happen (twice, as in production), after a short real wait."""
    return [0.05, 0.1]


@pytest.fixture
def proxy(localstripe_url: str) -> Iterator[StripeFaultProxy]:
    """Between the gateway under test and localstripe; a delayed answer is held past the
    client's timeout (CLIENT_TIMEOUT)."""
    with StripeFaultProxy(localstripe_url, delay=CLIENT_TIMEOUT * 2.5) as proxy:
        yield proxy
