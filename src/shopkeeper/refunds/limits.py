"""Refund limits per role and currency, read from settings.

`SHOPKEEPER_REFUND_LIMITS` caps what refunds nobody approved may add up to on one order;
`SHOPKEEPER_REFUND_DAILY_LIMITS` caps what one member of staff refunds without approval in any
24 hours. Both are {role: {CURRENCY: "decimal amount"}}.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from shopkeeper.accounts.permissions import Role
from shopkeeper.errors import DomainError
from shopkeeper.money import Money

SETTINGS = ("SHOPKEEPER_REFUND_LIMITS", "SHOPKEEPER_REFUND_DAILY_LIMITS")


def _read(name: str) -> Mapping[str, Mapping[str, str]]:
    """{role: {CURRENCY: "decimal amount"}}; currency codes upper-cased."""
    limits = getattr(settings, name, {}) or {}
    return {
        role: {currency.upper(): amount for currency, amount in table.items()}
        for role, table in limits.items()
        if isinstance(table, Mapping)
    }


def configured_limits() -> Mapping[str, Mapping[str, str]]:
    return _read("SHOPKEEPER_REFUND_LIMITS")


def configured_daily_limits() -> Mapping[str, Mapping[str, str]]:
    return _read("SHOPKEEPER_REFUND_DAILY_LIMITS")


def check_configured_limits() -> None:
    """Refuse to start with a limit table that names unknown roles or unparsable amounts."""
    for name in SETTINGS:
        _check(name, getattr(settings, name, {}) or {})


def _check(name: str, limits: object) -> None:
    if not isinstance(limits, Mapping):
        raise ImproperlyConfigured(f"{name} must map roles to currencies")
    for role, table in limits.items():
        if role not in set(Role):
            raise ImproperlyConfigured(f"{name} names unknown role {role!r}")
        if not isinstance(table, Mapping):
            raise ImproperlyConfigured(f"{name}[{role!r}] must be an object")
        for currency, amount in table.items():
            try:
                Money.parse(amount, currency)
            except DomainError as error:
                raise ImproperlyConfigured(
                    f"{name}[{role!r}][{currency!r}]: {error.detail}"
                ) from error
