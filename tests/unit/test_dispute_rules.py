"""The dispute rules: open and final statuses, what each final one means for the money, and
that a dispute only moves forward."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.disputes.rules import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    DisputeOutcome,
    DisputeStatus,
    dispute_status,
    is_newer,
    opening_status,
    outcome_of,
)

statuses = st.sampled_from(list(DisputeStatus))


def test_given_stripes_statuses_then_each_is_open_or_final_never_both():
    assert set(DisputeStatus) == OPEN_STATUSES | FINAL_STATUSES
    assert not OPEN_STATUSES & FINAL_STATUSES
    assert {str(s) for s in OPEN_STATUSES} == {
        "warning_needs_response",
        "warning_under_review",
        "needs_response",
        "under_review",
    }


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("needs_response", DisputeOutcome.OPEN),
        ("under_review", DisputeOutcome.OPEN),
        ("warning_needs_response", DisputeOutcome.OPEN),
        ("won", DisputeOutcome.RELEASED),
        ("warning_closed", DisputeOutcome.RELEASED),
        ("prevented", DisputeOutcome.RELEASED),
        ("lost", DisputeOutcome.LOST),
    ],
)
def test_given_a_status_then_its_outcome_for_the_money(status, outcome):
    assert outcome_of(status) == outcome


@pytest.mark.parametrize(
    ("current", "reported", "newer"),
    [
        ("needs_response", "under_review", True),
        ("needs_response", "won", True),
        ("needs_response", "lost", True),
        ("under_review", "needs_response", False),  # a late `created` after an update
        ("warning_under_review", "needs_response", True),  # an inquiry escalated
        ("warning_needs_response", "warning_closed", True),
        ("won", "needs_response", False),  # a late `created` after `closed`
        ("won", "lost", False),
        ("lost", "won", False),
        ("under_review", "under_review", False),
    ],
)
def test_given_known_status_when_news_arrives_then_only_forward_moves_are_news(
    current, reported, newer
):
    assert is_newer(current, reported) is newer


@given(statuses, statuses)
def test_given_any_two_statuses_then_news_never_goes_both_ways_and_final_is_final(a, b):
    assert not (is_newer(a, b) and is_newer(b, a))
    if a in FINAL_STATUSES:
        assert not is_newer(a, b)


@given(st.lists(statuses, min_size=1, max_size=8))
def test_given_news_in_any_order_then_applying_only_newer_news_ends_at_the_furthest(history):
    """However deliveries are ordered, the dispute ends at the first final status delivered,
    and stays open only when no final status was delivered at all."""
    current = history[0]
    for reported in history[1:]:
        if is_newer(current, reported):
            current = reported
    finals = [s for s in history if s in FINAL_STATUSES]
    if current in FINAL_STATUSES:
        assert current == finals[0]
    else:
        assert not finals


def test_given_an_unknown_stripe_status_then_refused():
    assert dispute_status("won") == DisputeStatus.WON
    with pytest.raises(ValueError, match="unknown Stripe dispute status"):
        dispute_status("charge_refunded")


@pytest.mark.parametrize(
    ("first_heard", "opened_as"),
    [
        ("needs_response", "needs_response"),
        ("warning_under_review", "warning_under_review"),
        ("won", "needs_response"),
        ("lost", "needs_response"),
        ("prevented", "needs_response"),
        ("warning_closed", "warning_needs_response"),
    ],
)
def test_given_a_dispute_first_heard_of_then_it_opens_where_it_must_have_started(
    first_heard, opened_as
):
    assert opening_status(first_heard) == opened_as
    assert opening_status(first_heard) in OPEN_STATUSES
    assert first_heard == opened_as or is_newer(opened_as, first_heard)
