"""When an uncaptured authorisation is expiring or expired, and what staff read about it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shopkeeper.orders.authorisation_rules import AuthorisationWindow, expiry_warning, span_text

WINDOW = AuthorisationWindow(warn_after=timedelta(days=5), expire_after=timedelta(days=6, hours=18))
AUTHORISED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(days=1, hours=18), "1 d 18 h"),
        (timedelta(days=2), "2 d"),
        (timedelta(hours=5, minutes=20, seconds=59), "5 h 20 min"),
        (timedelta(hours=3), "3 h"),
        (timedelta(minutes=12), "12 min"),
        (timedelta(seconds=30), "0 min"),
        (timedelta(seconds=-30), "0 min"),
    ],
)
def test_spans_read_in_days_hours_minutes_rounded_down(span, text):
    assert span_text(span) == text


def test_given_an_authorisation_when_just_before_warn_after_then_not_expiring():
    now = AUTHORISED + timedelta(days=5) - timedelta(seconds=1)
    assert not WINDOW.is_expiring(AUTHORISED, now)
    assert not WINDOW.has_expired(AUTHORISED, now)


def test_given_an_authorisation_when_warn_after_has_passed_then_expiring_not_expired():
    now = AUTHORISED + timedelta(days=5)
    assert WINDOW.is_expiring(AUTHORISED, now)
    assert not WINDOW.has_expired(AUTHORISED, now)
    expires_at = WINDOW.expires_at(AUTHORISED)
    assert expires_at == datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
    assert expiry_warning(expires_at, now) == "Authorisation lapses in 1 d 18 h: capture or cancel"


def test_given_an_authorisation_when_expire_after_has_passed_then_expired_and_said_so():
    now = AUTHORISED + timedelta(days=6, hours=20)
    assert WINDOW.has_expired(AUTHORISED, now)
    assert expiry_warning(WINDOW.expires_at(AUTHORISED), now) == (
        "Authorisation past its deadline by 2 h: capture or cancel now"
    )
