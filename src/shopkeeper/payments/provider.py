"""Which payment gateway the running Shopkeeper talks to: the port's factory.

`get_gateway()` builds the Stripe adapter from the settings (once per thread): `StripeGateway`
for real Stripe, `EmulatorGateway` (localstripe's quirks) when `STRIPE_API_BASE` names an
emulator. Tests and
tools swap in another implementation of the port with `use_gateway`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings

from shopkeeper.payments.gateway import PaymentGateway

_override: PaymentGateway | None = None
_per_thread = threading.local()


def get_gateway() -> PaymentGateway:
    """The gateway in use: the one a test or tool swapped in, else the settings' Stripe."""
    return _override if _override is not None else gateway_from_settings()


def gateway_from_settings() -> PaymentGateway:
    """The settings' Stripe adapter, one per thread while the settings stay the same: its HTTP
    session (requests', not shared between threads) keeps its connection to Stripe open, so a
    request does not open a new one (a TLS handshake to api.stripe.com) for each call."""
    from shopkeeper.payments.stripe.client import StripeGateway
    from shopkeeper.payments.stripe.emulator import EmulatorGateway
    from shopkeeper.payments.stripe.rate_limit import shared_limiter

    kind = StripeGateway if settings.STRIPE_API_BASE is None else EmulatorGateway
    config = (
        kind,
        settings.STRIPE_SECRET_KEY,
        settings.STRIPE_WEBHOOK_SECRET,
        settings.STRIPE_API_BASE,
        settings.STRIPE_TIMEOUT,
    )
    cached = getattr(_per_thread, "gateway", None)
    if cached is not None and cached[0] == config:
        return cached[1]
    gateway = kind(
        secret_key=settings.STRIPE_SECRET_KEY,
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,
        api_base=settings.STRIPE_API_BASE,
        timeout=settings.STRIPE_TIMEOUT,
        limiter=shared_limiter(),
        rate_limit_max_wait=settings.STRIPE_RATE_LIMIT_MAX_WAIT,
    )
    _per_thread.gateway = (config, gateway)
    return gateway


@contextmanager
def use_gateway(gateway: PaymentGateway) -> Iterator[PaymentGateway]:
    """Swap the gateway (tests, tools). Restores the previous one on exit."""
    global _override
    previous, _override = _override, gateway
    try:
        yield gateway
    finally:
        _override = previous
