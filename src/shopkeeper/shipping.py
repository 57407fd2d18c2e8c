"""The flat shipping fee per order, per currency, from settings.

A currency with no fee that parses in it cannot be sold: products in it are refused at creation
rather than failing at every checkout.
"""

from __future__ import annotations

from django.conf import settings

from shopkeeper.errors import DomainError, UnsupportedCurrency
from shopkeeper.money import Money, normalize_currency


def shipping_fee(currency: str) -> Money:
    code = normalize_currency(currency)
    fee = settings.SHOPKEEPER_SHIPPING_FEES.get(code, settings.SHOPKEEPER_SHIPPING_FEE)
    try:
        return Money.parse(fee, code)
    except DomainError as error:
        raise UnsupportedCurrency(
            f"No shipping fee is configured for {code}: set SHOPKEEPER_SHIPPING_FEES",
            currency=code,
        ) from error
