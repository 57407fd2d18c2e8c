"""One money operation at Stripe per order, and what the ledger refuses: the pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.orders.operations import (
    Claim,
    InFlight,
    OperationInProgress,
    claim,
    ensure_none_in_flight,
)
from shopkeeper.payments.ledger import (
    Balance,
    EntryKind,
    ImpossibleMovement,
    contradiction,
    ensure_possible,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=300)
CAPTURE = InFlight("capture", "order-SK-1-capture-pi_1-2500", NOW - timedelta(seconds=5))


def test_given_nothing_in_flight_then_the_operation_claims_the_order() -> None:
    assert claim(None, key="k", now=NOW, lease=LEASE) == Claim.FREE


def test_given_the_same_operation_in_flight_then_its_retry_goes_ahead() -> None:
    assert claim(CAPTURE, key=CAPTURE.key, now=NOW, lease=LEASE) == Claim.SAME


def test_given_another_operation_in_flight_then_409_operation_in_progress_naming_it() -> None:
    with pytest.raises(OperationInProgress) as refusal:
        claim(CAPTURE, key="order-SK-1-cancel", now=NOW, lease=LEASE)
    assert refusal.value.code == "operation_in_progress"
    assert refusal.value.extra["operation"] == "capture"


def test_given_a_claim_past_its_lease_then_it_is_expired_not_taken_over_silently() -> None:
    later = CAPTURE.started_at + LEASE
    assert claim(CAPTURE, key="order-SK-1-cancel", now=later, lease=LEASE) == Claim.EXPIRED


def test_given_a_capture_in_flight_then_a_refund_is_refused_until_its_lease_ends() -> None:
    with pytest.raises(OperationInProgress):
        ensure_none_in_flight(CAPTURE, now=NOW, lease=LEASE)
    ensure_none_in_flight(CAPTURE, now=CAPTURE.started_at + LEASE, lease=LEASE)
    ensure_none_in_flight(None, now=NOW, lease=LEASE)


def test_given_a_voided_authorisation_then_the_ledger_refuses_a_capture() -> None:
    voided = Balance(authorized=2500, released=2500, voided=True)
    assert contradiction(voided, EntryKind.CAPTURE)
    with pytest.raises(ImpossibleMovement) as refusal:
        ensure_possible(voided, EntryKind.CAPTURE, 1500)
    assert refusal.value.code == "impossible_movement"


def test_given_a_captured_authorisation_then_the_ledger_refuses_a_void() -> None:
    captured = Balance(authorized=2500, captured=1500, released=1000)
    assert contradiction(captured, EntryKind.VOID)
    assert not contradiction(captured, EntryKind.RELEASE)


@given(
    captured=st.integers(0, 10_000),
    refunded=st.integers(0, 10_000),
    disputed=st.integers(0, 10_000),
    amount=st.integers(1, 10_000),
)
def test_a_refund_is_refused_exactly_when_refunded_plus_disputed_would_pass_captured(
    captured: int, refunded: int, disputed: int, amount: int
) -> None:
    balance = Balance(authorized=captured, captured=captured, refunded=refunded, disputed=disputed)
    refused = bool(contradiction(balance, EntryKind.REFUND, amount))
    assert refused == (refunded + disputed + amount > captured)
