"""The pure refund rules: amounts, lines, shipping, limits, four eyes and the status table."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from shopkeeper.errors import IllegalTransition, InvalidAmount
from shopkeeper.money import Money
from shopkeeper.refunds.rules import (
    COUNTED_STATUSES,
    REFUND_TRANSITIONS,
    RESERVING_STATUSES,
    ApproverIsRequester,
    InvalidRefundLines,
    LineFacts,
    LineRequest,
    OrderFacts,
    OrderNotCaptured,
    RefundExceedsRefundable,
    RefundStatus,
    ShippingAlreadyRefunded,
    can_move_refund,
    ensure_decider,
    move_refund,
    parse_refund_amount,
    plan_refund,
    refund_approval,
    refund_limit_minor,
    refund_status_for_stripe,
)

S = RefundStatus


def facts(
    *,
    refundable: int = 2500,
    payment_status: str = "paid",
    currency: str = "USD",
    shipping: int = 500,
    shipping_refunded: bool = False,
    lines: dict[int, LineFacts] | None = None,
) -> OrderFacts:
    return OrderFacts(
        currency=currency,
        payment_status=payment_status,
        refundable_minor=refundable,
        shipping_minor=shipping,
        shipping_refunded=shipping_refunded,
        lines=lines if lines is not None else {1: LineFacts(1000, 2, 0)},
    )


# --- the status table -----------------------------------------------------------------------


def test_every_status_has_a_row_and_terminal_statuses_go_nowhere():
    assert set(REFUND_TRANSITIONS) == set(RefundStatus)
    for terminal in (S.FAILED, S.REJECTED, S.CANCELED):
        assert REFUND_TRANSITIONS[terminal] == frozenset()


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.AWAITING_APPROVAL, S.PENDING),
        (S.AWAITING_APPROVAL, S.REJECTED),
        (S.PENDING, S.SUCCEEDED),
        (S.PENDING, S.FAILED),
        (S.PENDING, S.CANCELED),
        (S.SUCCEEDED, S.FAILED),
        (S.PENDING, S.PENDING),
    ],
)
def test_given_allowed_move_then_it_is_made(current, target):
    assert move_refund(current, target) == target


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.AWAITING_APPROVAL, S.SUCCEEDED),  # never without being sent
        (S.PENDING, S.AWAITING_APPROVAL),
        (S.SUCCEEDED, S.PENDING),  # stale news
        (S.FAILED, S.SUCCEEDED),
        (S.REJECTED, S.PENDING),
    ],
)
def test_given_forbidden_move_then_illegal_transition(current, target):
    assert not can_move_refund(current, target)
    with pytest.raises(IllegalTransition):
        move_refund(current, target)


def test_open_refunds_reserve_money_and_given_up_ones_free_their_lines():
    assert frozenset({S.PENDING, S.AWAITING_APPROVAL}) == RESERVING_STATUSES
    assert S.SUCCEEDED in COUNTED_STATUSES
    assert not {S.FAILED, S.REJECTED, S.CANCELED} & COUNTED_STATUSES


@pytest.mark.parametrize(
    ("stripe", "ours"),
    [
        ("pending", S.PENDING),
        ("requires_action", S.PENDING),
        ("succeeded", S.SUCCEEDED),
        ("failed", S.FAILED),
        ("canceled", S.CANCELED),
    ],
)
def test_stripe_refund_statuses_map_to_ours(stripe, ours):
    assert refund_status_for_stripe(stripe) == ours


def test_unknown_stripe_status_is_an_error_not_a_guess():
    with pytest.raises(ValueError):
        refund_status_for_stripe("exploded")


# --- amounts --------------------------------------------------------------------------------


@pytest.mark.parametrize("payment_status", ["paid", "partially_refunded"])
def test_given_captured_payment_when_amount_within_refundable_then_planned(payment_status):
    plan = plan_refund(facts(payment_status=payment_status), amount="12.50")
    assert plan.amount == Money(1250, "USD") and plan.lines == ()


@pytest.mark.parametrize("payment_status", ["authorized", "pending", "failed", "voided"])
def test_given_nothing_captured_then_order_not_captured(payment_status):
    with pytest.raises(OrderNotCaptured) as error:
        plan_refund(facts(payment_status=payment_status), amount="1.00")
    assert error.value.code == "order_not_captured"


def test_given_refunded_in_full_then_refund_exceeds_refundable():
    with pytest.raises(RefundExceedsRefundable):
        plan_refund(facts(payment_status="refunded", refundable=0), amount="1.00")


@pytest.mark.parametrize(
    "amount", ["0", "0.00", "-1", "-0.01", "1.234", "1,00", " ", "NaN", "1e2", 5, 5.0, None]
)
def test_given_bad_amount_then_invalid_amount(amount):
    with pytest.raises(InvalidAmount) as error:
        parse_refund_amount(amount, "USD")
    assert error.value.code == "invalid_amount"


def test_given_no_amount_and_no_lines_then_everything_refundable():
    assert plan_refund(facts(refundable=1234)).amount.minor == 1234


def test_given_nothing_left_and_no_amount_then_refund_exceeds_refundable():
    with pytest.raises(RefundExceedsRefundable):
        plan_refund(facts(refundable=0))


def test_over_refund_error_says_what_is_left():
    with pytest.raises(RefundExceedsRefundable) as error:
        plan_refund(facts(refundable=1999), amount="20.00")
    assert error.value.extra == {"refundable": "19.99", "refundable_minor": 1999}


@pytest.mark.parametrize(
    ("currency", "good", "bad"),
    [("JPY", "500", "500.5"), ("KWD", "1.250", "1.255"), ("EUR", "0.01", "0.001")],
)
def test_amounts_follow_the_currency_exponent(currency, good, bad):
    order = facts(currency=currency, refundable=10**6)
    assert plan_refund(order, amount=good).amount == Money.parse(good, currency)
    with pytest.raises(InvalidAmount):
        plan_refund(order, amount=bad)


@given(
    captured=st.integers(min_value=1, max_value=10**7),
    requests=st.lists(st.integers(min_value=1, max_value=10**6), max_size=40),
)
def test_property_refunds_checked_one_after_another_never_exceed_captured(captured, requests):
    """Each accepted refund reserves its amount; refused is exactly an amount over what is left."""
    accepted = 0
    for minor in requests:
        left = captured - accepted
        text = Money(minor, "USD").to_decimal_string()
        try:
            plan = plan_refund(facts(refundable=left), amount=text)
        except RefundExceedsRefundable:
            assert minor > left
            continue
        assert plan.amount.minor == minor <= left
        accepted += minor
    assert 0 <= accepted <= captured


@given(
    currency=st.sampled_from(["USD", "JPY", "KWD", "EUR"]),
    refundable=st.integers(min_value=0, max_value=10**9),
    minor=st.integers(min_value=1, max_value=10**9),
)
def test_property_a_printed_amount_parses_back_and_is_accepted_iff_within_refundable(
    currency, refundable, minor
):
    if currency == "KWD":
        minor *= 10  # Stripe wants the last of three digits to be 0
    text = Money(minor, currency).to_decimal_string()
    order = facts(currency=currency, refundable=refundable)
    if minor <= refundable:
        assert plan_refund(order, amount=text).amount.minor == minor
    else:
        with pytest.raises(RefundExceedsRefundable):
            plan_refund(order, amount=text)


# --- lines and shipping ---------------------------------------------------------------------

LINES = {1: LineFacts(1000, 2, 0), 2: LineFacts(350, 4, 1)}


def test_given_lines_then_amount_is_unit_price_times_quantity_plus_shipping_once():
    plan = plan_refund(
        facts(lines=LINES, refundable=10**6),
        lines=[LineRequest(1, 2, restock=True), LineRequest(2, 3)],
        include_shipping=True,
    )
    assert plan.amount.minor == 2 * 1000 + 3 * 350 + 500
    assert [(p.line_id, p.quantity, p.restock, p.amount_minor) for p in plan.lines] == [
        (1, 2, True, 2000),
        (2, 3, False, 1050),
    ]


def test_given_shipping_only_then_amount_is_the_shipping_fee():
    assert plan_refund(facts(), include_shipping=True).amount.minor == 500


def test_given_shipping_refunded_before_then_refused_not_ignored():
    with pytest.raises(ShippingAlreadyRefunded):
        plan_refund(facts(shipping_refunded=True), include_shipping=True)


def test_given_more_units_than_left_on_a_line_then_refused_with_what_is_left():
    with pytest.raises(RefundExceedsRefundable) as error:
        plan_refund(facts(lines=LINES), lines=[LineRequest(2, 4)])
    assert error.value.extra == {"line_id": 2, "refundable_quantity": 3}


@pytest.mark.parametrize(
    "lines",
    [
        [LineRequest(9, 1)],
        [LineRequest(1, 0)],
        [LineRequest(1, -1)],
        [LineRequest(1, 1), LineRequest(1, 1)],
    ],
)
def test_given_unknown_repeated_or_empty_line_then_invalid_refund_lines(lines):
    with pytest.raises(InvalidRefundLines):
        plan_refund(facts(lines=LINES), lines=lines)


def test_given_amount_with_lines_then_it_may_be_lower_but_not_higher():
    order = facts(lines=LINES)
    assert plan_refund(order, amount="9.00", lines=[LineRequest(1, 1)]).amount.minor == 900
    with pytest.raises(InvalidAmount):
        plan_refund(order, amount="10.01", lines=[LineRequest(1, 1)])


def test_given_lines_worth_more_than_refundable_then_refused():
    with pytest.raises(RefundExceedsRefundable):
        plan_refund(facts(lines=LINES, refundable=1999), lines=[LineRequest(1, 2)])


@given(
    bought=st.lists(
        st.tuples(st.integers(1, 10**5), st.integers(1, 50), st.integers(0, 50)),
        min_size=1,
        max_size=6,
    ),
    picks=st.lists(st.integers(0, 60), min_size=1, max_size=6),
)
def test_property_line_refunds_never_exceed_units_left_and_amount_is_their_price(bought, picks):
    lines = {
        i + 1: LineFacts(price, qty, min(done, qty)) for i, (price, qty, done) in enumerate(bought)
    }
    requests = [
        LineRequest(line_id, quantity)
        for line_id, quantity in zip(lines, picks, strict=False)
        if quantity > 0
    ]
    assume(requests)
    order = facts(lines=lines, refundable=10**12)
    try:
        plan = plan_refund(order, lines=requests)
    except RefundExceedsRefundable as error:
        line = lines[error.extra["line_id"]]
        asked = next(r.quantity for r in requests if r.line_id == error.extra["line_id"])
        assert asked > line.quantity - line.refunded_quantity
        return
    for planned in plan.lines:
        line = lines[planned.line_id]
        assert planned.quantity <= line.quantity - line.refunded_quantity
        assert planned.amount_minor == planned.quantity * line.unit_price_minor
    assert plan.amount.minor == sum(p.amount_minor for p in plan.lines)


# --- limits and four eyes -------------------------------------------------------------------

LIMITS = {"support": {"USD": "100.00", "JPY": "15000"}}


@pytest.mark.parametrize(
    ("role", "amount", "currency", "approval"),
    [
        ("support", "100.00", "USD", False),
        ("support", "100.01", "USD", True),
        ("support", "15000", "JPY", False),
        ("support", "15001", "JPY", True),
        ("support", "0.01", "EUR", True),  # no limit named for EUR: limits fail closed
        ("manager", "99999.00", "USD", False),
        ("owner", "99999.00", "EUR", False),
    ],
)
def test_refund_limits_per_role_and_currency(role, amount, currency, approval):
    assert needs_approval(role, Money.parse(amount, currency), LIMITS) is approval


def needs_approval(role: str, money: Money, limits) -> bool:
    """A first refund on an order, by someone who refunded nothing today."""
    check = refund_approval(
        role,
        money,
        order_unapproved_minor=0,
        actor_day_unapproved_minor=0,
        limits=limits,
        daily_limits={},
    )
    return check.needed


def test_unlisted_role_has_no_limit_and_listed_currency_parses():
    assert refund_limit_minor("manager", "USD", LIMITS) is None
    assert refund_limit_minor("support", "USD", LIMITS) == 10000
    assert refund_limit_minor("support", "GBP", LIMITS) == 0


def test_requester_cannot_decide_their_own_refund():
    with pytest.raises(ApproverIsRequester) as error:
        ensure_decider(requester_id=7, decider_id=7)
    assert error.value.code == "approver_is_requester"
    ensure_decider(requester_id=7, decider_id=8)
    ensure_decider(requester_id=None, decider_id=8)


@pytest.mark.parametrize(
    "limits",
    [
        {"intern": {"USD": "1.00"}},
        {"support": {"USD": "1.001"}},
        {"support": {"XXX": "1.00"}},
        {"support": "100"},
        ["support"],
    ],
)
def test_given_misconfigured_limits_then_startup_check_refuses(settings, limits):
    from django.core.exceptions import ImproperlyConfigured

    from shopkeeper.refunds.limits import check_configured_limits

    settings.SHOPKEEPER_REFUND_LIMITS = limits
    with pytest.raises(ImproperlyConfigured):
        check_configured_limits()


def test_configured_limits_read_currency_codes_in_any_case(settings):
    from shopkeeper.refunds.limits import check_configured_limits, configured_limits

    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"usd": "50.00"}}
    check_configured_limits()
    assert needs_approval("support", Money.parse("50.01", "USD"), configured_limits())
