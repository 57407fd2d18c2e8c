"""Refund limits cap sums, not single refunds: per order, and per member of staff per 24 hours."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.money import Money
from shopkeeper.refunds.rules import ApprovalReason, refund_approval

LIMITS = {"support": {"USD": "100.00", "JPY": "15000"}}
DAILY = {"support": {"USD": "500.00", "JPY": "75000"}}
R = ApprovalReason


def check(amount: str, *, order: int = 0, day: int = 0, role: str = "support", currency="USD"):
    return refund_approval(
        role,
        Money.parse(amount, currency),
        order_unapproved_minor=order,
        actor_day_unapproved_minor=day,
        limits=LIMITS,
        daily_limits=DAILY,
    )


@pytest.mark.parametrize(
    ("amount", "order", "day", "reasons"),
    [
        ("100.00", 0, 0, ()),
        ("100.01", 0, 0, (R.ORDER_LIMIT,)),
        ("100.00", 1, 0, (R.ORDER_LIMIT,)),  # six 100.00 refunds: only the first goes alone
        ("40.00", 6000, 0, ()),
        ("40.01", 6000, 0, (R.ORDER_LIMIT,)),
        ("100.00", 0, 40000, ()),
        ("100.00", 0, 40001, (R.DAILY_LIMIT,)),
        ("100.01", 9000, 49000, (R.ORDER_LIMIT, R.DAILY_LIMIT)),
    ],
)
def test_given_earlier_unapproved_sums_then_the_refund_counts_on_top(amount, order, day, reasons):
    assert check(amount, order=order, day=day).reasons == reasons


def test_given_what_is_left_then_the_check_says_it_per_limit():
    result = check("1.00", order=6000, day=49000)
    assert (result.order_left_minor, result.daily_left_minor) == (4000, 1000)
    assert check("1.00", order=99999).order_left_minor == 0  # never negative


@pytest.mark.parametrize(
    ("daily", "reasons"),
    [
        ({"support": {"USD": "500.00"}}, (R.NO_LIMIT_SET,)),  # EUR named in neither table
        ({}, (R.NO_LIMIT_SET,)),
    ],
)
def test_given_a_currency_the_role_table_does_not_name_then_every_refund_needs_approval(
    daily, reasons
):
    result = refund_approval(
        "support",
        Money.parse("0.01", "EUR"),
        order_unapproved_minor=0,
        actor_day_unapproved_minor=0,
        limits=LIMITS,
        daily_limits=daily,
    )
    assert result.reasons == reasons and result.needed


def test_given_currency_named_per_order_but_not_per_day_then_approval_says_no_limit_set():
    result = refund_approval(
        "support",
        Money.parse("0.01", "USD"),
        order_unapproved_minor=0,
        actor_day_unapproved_minor=0,
        limits=LIMITS,
        daily_limits={"support": {"EUR": "500.00"}},
    )
    assert result.reasons == (R.NO_LIMIT_SET,)


def test_given_a_role_in_neither_table_then_no_limit_whatever_the_sums():
    result = check("99999.00", order=10**9, day=10**9, role="manager")
    assert not result.needed and result.order_left_minor is None is result.daily_left_minor


amounts = st.lists(st.integers(min_value=1, max_value=30000), min_size=1, max_size=40)


@given(amounts=amounts, orders=st.lists(st.integers(0, 3), min_size=40, max_size=40))
def test_given_any_split_of_refunds_over_orders_then_unapproved_sums_stay_within_limits(
    amounts, orders
):
    """Whatever the pieces and however they are spread over orders, what goes ahead alone
    stays within the per-order limit on each order and the daily limit in all."""
    per_order = {order: 0 for order in range(4)}
    day = 0
    for amount, order in zip(amounts, orders, strict=False):
        result = refund_approval(
            "support",
            Money(amount, "USD"),
            order_unapproved_minor=per_order[order],
            actor_day_unapproved_minor=day,
            limits=LIMITS,
            daily_limits=DAILY,
        )
        if not result.needed:  # it goes to Stripe and counts from now on
            per_order[order] += amount
            day += amount
    assert all(total <= 10000 for total in per_order.values())
    assert day <= 50000


@given(
    amount=st.integers(1, 100000),
    order=st.integers(0, 100000),
    day=st.integers(0, 100000),
    more=st.integers(0, 100000),
)
def test_given_more_already_refunded_then_approval_is_never_less_needed(amount, order, day, more):
    def needed(order: int, day: int) -> bool:
        return refund_approval(
            "support",
            Money(amount, "USD"),
            order_unapproved_minor=order,
            actor_day_unapproved_minor=day,
            limits=LIMITS,
            daily_limits=DAILY,
        ).needed

    if needed(order, day):
        assert needed(order + more, day) and needed(order, day + more)


@given(amount=st.integers(1, 100000), order=st.integers(0, 20000), day=st.integers(0, 60000))
def test_given_any_amount_then_approval_is_exactly_going_over_a_limit(amount, order, day):
    result = check(Money(amount, "USD").to_decimal_string(), order=order, day=day)
    assert result.needed == (order + amount > 10000 or day + amount > 50000)


@pytest.mark.parametrize(
    "daily", [{"intern": {"USD": "1.00"}}, {"support": {"USD": "x"}}, ["support"]]
)
def test_given_misconfigured_daily_limits_then_startup_check_refuses(settings, daily):
    from django.core.exceptions import ImproperlyConfigured

    from shopkeeper.refunds.limits import check_configured_limits

    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = daily
    with pytest.raises(ImproperlyConfigured, match="SHOPKEEPER_REFUND_DAILY_LIMITS"):
        check_configured_limits()
