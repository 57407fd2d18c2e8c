"""Money: integer minor units plus an ISO currency code, with Stripe's exponent table.

Amounts typed by people arrive as decimal strings and are parsed exactly against the
currency's exponent: more decimals than the currency has is an error, never rounded.
No floats anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shopkeeper.errors import InvalidAmount, UnsupportedCurrency

# Stripe's zero-decimal currencies: amounts are whole units.
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
# Stripe's three-decimal currencies: the last minor digit must be 0.
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
# Two-decimal in Stripe's API, but only whole units may be charged (decimal part "00").
WHOLE_UNITS_ONLY = frozenset({"ISK"})
# The currencies Stripe accepts that this project knows; everything else is rejected.
TWO_DECIMAL = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "AUD",
        "CAD",
        "CHF",
        "CNY",
        "CZK",
        "DKK",
        "HKD",
        "HUF",
        "ILS",
        "INR",
        "ISK",
        "MXN",
        "MYR",
        "NOK",
        "NZD",
        "PHP",
        "PLN",
        "RON",
        "SEK",
        "SGD",
        "THB",
        "TRY",
        "TWD",
        "ZAR",
        "BRL",
        "AED",
        "SAR",
        "QAR",
        "EGP",
        "IDR",
    ]
)
SUPPORTED = ZERO_DECIMAL | THREE_DECIMAL | TWO_DECIMAL

# ASCII digits only: `\d` alone would also take other scripts' digits ("١٢" as 12). Matched
# against the whole text: surrounding whitespace (a no-break space too) is refused, not stripped.
_DECIMAL_RE = re.compile(r"(?P<units>\d{1,15})(?:\.(?P<fraction>\d+))?", re.ASCII)


def normalize_currency(currency: str) -> str:
    code = (currency or "").strip().upper()
    if code not in SUPPORTED:
        raise UnsupportedCurrency(f"Currency {currency!r} is not supported", currency=currency)
    return code


def exponent(currency: str) -> int:
    code = normalize_currency(currency)
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def minor_step(currency: str) -> int:
    """The smallest chargeable increment, in minor units."""
    code = normalize_currency(currency)
    if code in THREE_DECIMAL:
        return 10
    if code in WHOLE_UNITS_ONLY:
        return 100
    return 1


@dataclass(frozen=True, slots=True, order=True)
class Money:
    minor: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.minor, int) or isinstance(self.minor, bool):
            raise TypeError("Money.minor must be an int")
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Parse a non-negative decimal string such as "12.50" in `currency`, exactly as given."""
        code = normalize_currency(currency)
        if not isinstance(text, str):
            raise InvalidAmount('Amount must be a decimal string such as "12.50"')
        match = _DECIMAL_RE.fullmatch(text)
        if match is None:
            raise InvalidAmount(f'{text!r} is not a decimal amount such as "12.50"')
        digits = exponent(code)
        fraction = match.group("fraction") or ""
        if len(fraction) > digits:
            raise InvalidAmount(
                f"{code} amounts have at most {digits} decimal places; got {text!r}"
            )
        minor = int(match.group("units")) * 10**digits + int(fraction.ljust(digits, "0") or "0")
        if minor % minor_step(code):
            raise InvalidAmount(f"{text!r} is not a chargeable {code} amount")
        return cls(minor, code)

    def to_decimal_string(self) -> str:
        digits = exponent(self.currency)
        sign = "-" if self.minor < 0 else ""
        units, fraction = divmod(abs(self.minor), 10**digits)
        if digits == 0:
            return f"{sign}{units}"
        return f"{sign}{units}.{fraction:0{digits}d}"

    def __str__(self) -> str:
        return f"{self.to_decimal_string()} {self.currency}"

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise InvalidAmount(f"Cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def __mul__(self, quantity: int) -> Money:
        if not isinstance(quantity, int) or isinstance(quantity, bool):
            raise TypeError("Money can only be multiplied by an int")
        return Money(self.minor * quantity, self.currency)


def amount_fields(name: str, minor: int, currency: str) -> dict[str, str | int]:
    """How the API and the pages show an amount: `grand_total: "26.00"` beside
    `grand_total_minor: 2600`."""
    return {name: Money(minor, currency).to_decimal_string(), f"{name}_minor": minor}
