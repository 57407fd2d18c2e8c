"""Refund limits per role and currency, read from settings (`SHOPKEEPER_REFUND_LIMITS`)."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from shopkeeper.accounts.permissions import Role
from shopkeeper.errors import DomainError
from shopkeeper.money import Money


def configured_limits() -> Mapping[str, Mapping[str, str]]:
    """{role: {CURRENCY: "decimal amount"}}; currency codes upper-cased."""
    limits = getattr(settings, "SHOPKEEPER_REFUND_LIMITS", {}) or {}
    return {
        role: {currency.upper(): amount for currency, amount in table.items()}
        for role, table in limits.items()
        if isinstance(table, Mapping)
    }


def check_configured_limits() -> None:
    """Refuse to start with a limit table that names unknown roles or unparsable amounts."""
    limits = getattr(settings, "SHOPKEEPER_REFUND_LIMITS", {}) or {}
    if not isinstance(limits, Mapping):
        raise ImproperlyConfigured("SHOPKEEPER_REFUND_LIMITS must map roles to currencies")
    for role, table in limits.items():
        if role not in set(Role):
            raise ImproperlyConfigured(f"SHOPKEEPER_REFUND_LIMITS names unknown role {role!r}")
        if not isinstance(table, Mapping):
            raise ImproperlyConfigured(f"SHOPKEEPER_REFUND_LIMITS[{role!r}] must be an object")
        for currency, amount in table.items():
            try:
                Money.parse(amount, currency)
            except DomainError as error:
                raise ImproperlyConfigured(
                    f"SHOPKEEPER_REFUND_LIMITS[{role!r}][{currency!r}]: {error.detail}"
                ) from error
