"""SHOPKEEPER_RECONCILE_AT and SHOPKEEPER_RECONCILE_FIX: read from the environment, bad values
refused at start-up with a message that names the setting."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from shopkeeper.settings import _flag, _time_of_day


@pytest.mark.parametrize(
    ("text", "expected"), [("", (3, 0)), ("03:00", (3, 0)), ("0:05", (0, 5)), ("23:59", (23, 59))]
)
def test_a_time_of_day_is_read_as_hour_and_minute(monkeypatch, text, expected):
    monkeypatch.setenv("SHOPKEEPER_RECONCILE_AT", text)
    assert _time_of_day("SHOPKEEPER_RECONCILE_AT", "03:00") == expected


@pytest.mark.parametrize("text", ["3", "24:00", "12:60", "3am", "03:0", "-1:00", "03:00:00"])
def test_a_bad_time_of_day_is_refused(monkeypatch, text):
    monkeypatch.setenv("SHOPKEEPER_RECONCILE_AT", text)
    with pytest.raises(ImproperlyConfigured, match=r"SHOPKEEPER_RECONCILE_AT must be .* HH:MM"):
        _time_of_day("SHOPKEEPER_RECONCILE_AT", "03:00")


@pytest.mark.parametrize(("text", "expected"), [("", False), ("0", False), ("1", True)])
def test_a_flag_is_0_or_1(monkeypatch, text, expected):
    monkeypatch.setenv("SHOPKEEPER_RECONCILE_FIX", text)
    assert _flag("SHOPKEEPER_RECONCILE_FIX", "0") is expected


@pytest.mark.parametrize("text", ["yes", "true", "2"])
def test_a_bad_flag_is_refused(monkeypatch, text):
    monkeypatch.setenv("SHOPKEEPER_RECONCILE_FIX", text)
    with pytest.raises(ImproperlyConfigured, match="SHOPKEEPER_RECONCILE_FIX must be 1"):
        _flag("SHOPKEEPER_RECONCILE_FIX", "0")
