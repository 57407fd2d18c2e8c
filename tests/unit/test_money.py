"""Money: integer minor units, Stripe's exponent table, exact parsing of decimal strings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.errors import InvalidAmount, UnsupportedCurrency
from shopkeeper.money import (
    SUPPORTED,
    THREE_DECIMAL,
    ZERO_DECIMAL,
    Money,
    exponent,
    minor_step,
)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.00", "USD", 1200),
        ("12", "USD", 1200),
        ("12.5", "USD", 1250),
        ("0.01", "EUR", 1),
        ("0", "USD", 0),
        ("1800", "JPY", 1800),
        ("6000", "KRW", 6000),
        ("1.500", "KWD", 1500),
        ("1.5", "KWD", 1500),
        ("2.010", "BHD", 2010),
        ("3.50", "JOD", 3500),
        ("7", "ISK", 700),
        ("7.00", "ISK", 700),
        ("4.25", " usd", 425),  # the currency code is normalised; the amount never is
    ],
)
def test_given_a_decimal_string_when_parsed_then_minor_units_follow_the_currency_exponent(
    text: str, currency: str, minor: int
) -> None:
    money = Money.parse(text, currency)
    assert money.minor == minor
    assert money.currency == currency.strip().upper()


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("12.001", "USD"),  # three decimals in a two-decimal currency
        ("1800.5", "JPY"),  # any decimal in a zero-decimal currency
        ("6000.0", "KRW"),
        ("1.2345", "KWD"),  # four decimals in a three-decimal currency
        ("0.0001", "BHD"),
        ("1.001", "JOD"),  # three decimals allowed, but Stripe needs the last digit to be 0
        ("2.005", "KWD"),
        ("7.50", "ISK"),  # ISK is charged in whole units only
    ],
)
def test_given_more_precision_than_the_currency_allows_when_parsed_then_it_is_an_error(
    text: str, currency: str
) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(text, currency)


# Strict decimals: no surrounding whitespace of any kind, ASCII or Unicode.
SURROUNDED = [" 1.00", "1.00 ", "\t1.00", "1.00\n", "\u00a01.00", "1.00\u00a0", "\u20071.00"]


@pytest.mark.parametrize(
    "text",
    [
        *SURROUNDED,
        *("", " ", "-1.00", "+1.00", "1,00", "1e3", "1.", ".5", "abc", "1.2.3", "NaN", "١٢"),
    ],
)
def test_given_text_that_is_not_a_plain_decimal_when_parsed_then_it_is_an_error(text: str) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(text, "USD")


@pytest.mark.parametrize("value", [12.5, 12, None, b"12.00"])
def test_given_a_number_instead_of_a_string_when_parsed_then_it_is_refused(value: object) -> None:
    with pytest.raises(InvalidAmount):
        Money.parse(value, "USD")  # type: ignore[arg-type]


def test_given_a_float_when_money_is_built_from_it_then_it_is_refused() -> None:
    with pytest.raises(TypeError):
        Money(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(True, "USD")
    with pytest.raises(TypeError):
        Money(100, "USD") * 1.5  # type: ignore[operator]


@pytest.mark.parametrize("currency", ["XXX", "", "usdollar", "BTC"])
def test_given_an_unknown_currency_then_it_is_unsupported(currency: str) -> None:
    with pytest.raises(UnsupportedCurrency):
        Money.parse("1.00", currency)


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1200, "USD", "12.00"),
        (5, "USD", "0.05"),
        (1800, "JPY", "1800"),
        (6000, "KRW", "6000"),
        (1500, "KWD", "1.500"),
        (10, "BHD", "0.010"),
        (3500, "JOD", "3.500"),
        (700, "ISK", "7.00"),
        (-250, "USD", "-2.50"),
    ],
)
def test_given_minor_units_when_formatted_then_the_string_has_the_currency_decimals(
    minor: int, currency: str, text: str
) -> None:
    assert Money(minor, currency).to_decimal_string() == text
    assert str(Money(minor, currency)) == f"{text} {currency}"


def test_the_exponent_table_matches_stripe_for_the_named_currencies() -> None:
    assert {exponent(c) for c in ("JPY", "KRW", "VND", "CLP")} == {0}
    assert {exponent(c) for c in ("KWD", "BHD", "JOD", "OMR", "TND")} == {3}
    assert {exponent(c) for c in ("USD", "EUR", "GBP", "ISK", "HUF")} == {2}
    assert minor_step("KWD") == 10
    assert minor_step("ISK") == 100
    assert minor_step("USD") == minor_step("JPY") == 1


def test_given_two_currencies_when_added_then_it_is_an_error() -> None:
    with pytest.raises(InvalidAmount):
        Money(100, "USD") + Money(100, "EUR")
    assert Money(100, "JPY") + Money(23, "JPY") == Money(123, "JPY")
    assert Money(3, "KWD") * 4 == Money(12, "KWD")


def _chargeable(currency: str) -> st.SearchStrategy[Money]:
    step = minor_step(currency)
    return st.integers(min_value=0, max_value=10**12).map(lambda n: Money(n * step, currency))


currencies = st.sampled_from(sorted(SUPPORTED))
chargeable_money = currencies.flatmap(_chargeable)


@given(chargeable_money)
def test_property_formatting_then_parsing_gives_back_the_same_money(money: Money) -> None:
    assert Money.parse(money.to_decimal_string(), money.currency) == money


@given(chargeable_money)
def test_property_the_formatted_string_has_exactly_the_currency_decimals(money: Money) -> None:
    text = money.to_decimal_string()
    digits = exponent(money.currency)
    if digits == 0:
        assert "." not in text
    else:
        assert len(text.split(".")[1]) == digits


@given(
    currency=st.sampled_from(sorted(ZERO_DECIMAL | THREE_DECIMAL | {"USD", "EUR"})),
    units=st.integers(min_value=0, max_value=10**9),
    extra=st.text(alphabet="0123456789", min_size=1, max_size=4),
)
def test_property_one_decimal_too_many_is_always_refused_never_rounded(
    currency: str, units: int, extra: str
) -> None:
    fraction = "0" * exponent(currency) + extra  # one or more digits past the exponent
    with pytest.raises(InvalidAmount):
        Money.parse(f"{units}.{fraction}", currency)
