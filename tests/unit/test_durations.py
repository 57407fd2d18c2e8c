"""Durations in settings: `2m`, `6d18h`, a bare number of seconds; junk refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.durations import BadDuration, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", timedelta(seconds=90)),
        ("90s", timedelta(seconds=90)),
        ("2m", timedelta(minutes=2)),
        ("60m", timedelta(hours=1)),
        ("5d", timedelta(days=5)),
        ("6d18h", timedelta(days=6, hours=18)),
        (" 1h 30m ", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("0", timedelta(0)),
        ("2M", timedelta(minutes=2)),
    ],
)
def test_given_a_written_duration_then_its_timedelta(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "m", "2x", "-5m", "5m2h", "2m2m", "1e400", "nan", "inf", "2 minutes", "1h-5m"]
)
def test_given_junk_then_refused_with_an_example(text):
    with pytest.raises(BadDuration):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**9))
def test_given_whole_seconds_when_formatted_then_read_back_the_same(seconds):
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


def test_given_six_days_eighteen_hours_then_written_shortest():
    assert format_duration(timedelta(days=6, hours=18)) == "6d18h"
    assert format_duration(timedelta(0)) == "0s"
