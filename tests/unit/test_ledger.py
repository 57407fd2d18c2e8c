"""Ledger arithmetic: balances and the payment status are derived from movements, never stored."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.payments.ledger import Balance, EntryKind, Movement, balance_of, payment_status_for
from shopkeeper.payments.states import PaymentStatus, can_move_payment

K, P = EntryKind, PaymentStatus


def test_given_no_movements_then_the_balance_is_empty_and_the_status_is_kept() -> None:
    balance = balance_of([])
    assert balance == Balance()
    assert payment_status_for(balance, P.PENDING) == P.PENDING
    assert payment_status_for(balance, "failed") == P.FAILED


def test_given_an_authorisation_then_it_is_capturable_and_not_refundable() -> None:
    balance = balance_of([Movement(K.AUTHORIZATION, 2600)])
    assert (balance.capturable, balance.refundable()) == (2600, 0)
    assert payment_status_for(balance, P.PENDING) == P.AUTHORIZED


def test_given_a_partial_capture_then_the_rest_is_released_and_nothing_is_capturable() -> None:
    balance = balance_of(
        [Movement(K.AUTHORIZATION, 2600), Movement(K.CAPTURE, 2000), Movement(K.RELEASE, 600)]
    )
    assert (balance.captured, balance.released, balance.capturable) == (2000, 600, 0)
    assert balance.refundable() == 2000
    assert payment_status_for(balance, P.AUTHORIZED) == P.PAID


def test_given_a_void_then_the_payment_is_voided_and_nothing_is_left() -> None:
    balance = balance_of([Movement(K.AUTHORIZATION, 2600), Movement(K.VOID, 2600)])
    assert balance.voided and balance.capturable == 0 and balance.refundable() == 0
    assert payment_status_for(balance, P.AUTHORIZED) == P.VOIDED


def test_given_refunds_then_status_follows_the_refunded_part() -> None:
    paid = [Movement(K.AUTHORIZATION, 2600), Movement("capture", 2600)]
    partly = [*paid, Movement(K.REFUND, 1000)]
    fully = [*partly, Movement(K.REFUND, 1600)]
    assert payment_status_for(balance_of(partly), P.PAID) == P.PARTIALLY_REFUNDED
    assert balance_of(partly).refundable() == 1600
    assert balance_of(partly).refundable(pending_refunds=600) == 1000
    assert payment_status_for(balance_of(fully), P.PARTIALLY_REFUNDED) == P.REFUNDED
    assert balance_of(fully).refundable() == 0


def test_given_a_refund_that_failed_after_succeeding_then_the_money_is_refundable_again() -> None:
    movements = [
        Movement(K.AUTHORIZATION, 2600),
        Movement(K.CAPTURE, 2600),
        Movement(K.REFUND, 2600),
        Movement(K.REFUND_REVERSAL, 2600),
    ]
    balance = balance_of(movements)
    assert (balance.refunded, balance.refundable()) == (0, 2600)
    assert payment_status_for(balance, P.REFUNDED) == P.PAID


def test_given_an_open_dispute_then_the_disputed_amount_is_not_refundable() -> None:
    opened = [Movement(K.AUTHORIZATION, 2600), Movement(K.CAPTURE, 2600), Movement(K.DISPUTE, 2000)]
    assert balance_of(opened).refundable() == 600
    closed = [*opened, Movement(K.DISPUTE_CLOSED, 2000)]
    assert balance_of(closed).refundable() == 2600


def test_given_a_negative_amount_then_the_ledger_refuses_it() -> None:
    with pytest.raises(ValueError):
        balance_of([Movement(K.REFUND, -100)])


def test_given_an_unknown_kind_then_the_ledger_refuses_it() -> None:
    with pytest.raises(ValueError):
        balance_of([Movement("bonus", 100)])


@st.composite
def histories(draw: st.DrawFn) -> list[Movement]:
    """A chronological ledger as Stripe can produce it: authorise, capture or void, then
    refunds, some of which later fail (reversal), and disputes."""
    authorized = draw(st.integers(min_value=1, max_value=10**9))
    moves = [Movement(K.AUTHORIZATION, authorized)]
    if draw(st.booleans()):
        return [*moves, Movement(K.VOID, authorized)] if draw(st.booleans()) else moves
    captured = draw(st.integers(min_value=1, max_value=authorized))
    moves.append(Movement(K.CAPTURE, captured))
    if captured < authorized:
        moves.append(Movement(K.RELEASE, authorized - captured))
    refunds: list[int] = []
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        choice = draw(st.sampled_from(["refund", "reversal", "dispute"]))
        if choice == "reversal" and refunds:
            amount = refunds.pop(draw(st.integers(min_value=0, max_value=len(refunds) - 1)))
            moves.append(Movement(K.REFUND_REVERSAL, amount))
        elif choice == "refund" and sum(refunds) < captured:
            amount = draw(st.integers(min_value=1, max_value=captured - sum(refunds)))
            refunds.append(amount)
            moves.append(Movement(K.REFUND, amount))
        elif choice == "dispute":
            moves.append(Movement(K.DISPUTE, draw(st.integers(min_value=1, max_value=captured))))
    return moves


@given(histories())
def test_property_refunded_never_exceeds_captured_nor_captured_authorised(
    moves: list[Movement],
) -> None:
    for end in range(1, len(moves) + 1):
        balance = balance_of(moves[:end])
        assert 0 <= balance.refunded <= balance.captured <= balance.authorized
        assert 0 <= balance.refundable() <= balance.captured - balance.refunded
        assert 0 <= balance.capturable <= balance.authorized


@given(histories())
def test_property_the_derived_status_only_moves_along_the_table(moves: list[Movement]) -> None:
    status = P.PENDING
    for end in range(1, len(moves) + 1):
        derived = payment_status_for(balance_of(moves[:end]), status)
        assert can_move_payment(status, derived), f"{status} -> {derived} after {moves[:end]}"
        status = derived


@given(histories())
def test_property_the_status_says_exactly_what_the_ledger_proves(moves: list[Movement]) -> None:
    balance = balance_of(moves)
    status = payment_status_for(balance, P.PENDING)
    if balance.captured == 0:
        assert status == (P.VOIDED if balance.voided else P.AUTHORIZED)
    elif balance.refunded == 0:
        assert status == P.PAID
    elif balance.refunded < balance.captured:
        assert status == P.PARTIALLY_REFUNDED
    else:
        assert status == P.REFUNDED and balance.refundable() == 0


@given(histories(), st.randoms(use_true_random=False))
def test_property_the_balance_does_not_depend_on_the_order_rows_are_read(
    moves: list[Movement], random: object
) -> None:
    shuffled = list(moves)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert balance_of(shuffled) == balance_of(moves)


@given(histories(), st.integers(min_value=0, max_value=10**9))
def test_property_pending_refunds_are_held_back_from_refundable(
    moves: list[Movement], pending: int
) -> None:
    balance = balance_of(moves)
    assert balance.refundable(pending) == max(balance.refundable() - pending, 0)


def test_the_documented_ledger_kinds_are_the_code() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "state-machine.md"
    section = doc.read_text().split("\n## The ledger\n", 1)[1]
    documented = set(re.findall(r"^\| `([a-z_]+)`", section, re.MULTILINE))
    assert documented == {kind.value for kind in EntryKind}
