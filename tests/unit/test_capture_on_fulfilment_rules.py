"""The pure rules of capture on fulfilment: what the last shipment captures, when a shipment is
refused because the authorisation is gone, and how a capture mode maps to Stripe."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shopkeeper.fulfilment.capture_rules import (
    AuthorizationLapsed,
    ShippedLine,
    amount_to_capture,
    ensure_authorisation_open,
)
from shopkeeper.payments.capture_modes import CaptureMode, mode_of, stripe_capture_method

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
DEADLINE = timedelta(days=6, hours=18)


def test_given_everything_shipped_then_the_whole_authorisation_is_captured():
    lines = [ShippedLine(1000, 2), ShippedLine(1000, 1)]

    assert amount_to_capture(lines, shipping_minor=500, capturable_minor=3500) == 3500


def test_given_units_that_never_shipped_then_their_worth_is_released():
    lines = [ShippedLine(1000, 2), ShippedLine(2500, 0)]  # the second line was not sent

    assert amount_to_capture(lines, shipping_minor=500, capturable_minor=5500) == 2500


def test_given_shipped_worth_above_what_is_authorised_then_only_the_authorisation_is_taken():
    assert amount_to_capture([ShippedLine(1000, 3)], shipping_minor=500, capturable_minor=2000) == (
        2000
    )


@pytest.mark.parametrize(
    ("lines", "capturable"),
    [([ShippedLine(1000, 0)], 1500), ([], 1500), ([ShippedLine(1000, 1)], 0)],
    ids=["nothing-shipped", "no-lines", "nothing-authorised"],
)
def test_given_nothing_shipped_or_authorised_then_nothing_is_captured(lines, capturable):
    assert amount_to_capture(lines, shipping_minor=500, capturable_minor=capturable) == 0


def test_given_zero_decimal_amounts_then_minor_units_add_up_as_they_are():
    assert amount_to_capture([ShippedLine(1200, 3)], shipping_minor=700, capturable_minor=4300) == (
        4300
    )


def test_given_an_open_authorisation_within_its_deadline_then_the_shipment_may_leave():
    ensure_authorisation_open(
        stripe_voided=False,
        authorised_at=NOW - DEADLINE + timedelta(minutes=1),
        now=NOW,
        expire_after=DEADLINE,
    )


def test_given_an_authorisation_at_its_deadline_then_it_is_lapsed():
    with pytest.raises(AuthorizationLapsed) as refused:
        ensure_authorisation_open(
            stripe_voided=False, authorised_at=NOW - DEADLINE, now=NOW, expire_after=DEADLINE
        )
    assert refused.value.code == "authorization_lapsed"
    assert refused.value.extra["expired_at"] == NOW.isoformat()


def test_given_stripe_voided_the_authorisation_then_it_is_lapsed_whatever_its_age():
    with pytest.raises(AuthorizationLapsed):
        ensure_authorisation_open(
            stripe_voided=True, authorised_at=NOW, now=NOW, expire_after=DEADLINE
        )


@pytest.mark.parametrize(
    ("mode", "method"),
    [("automatic", "automatic"), ("manual", "manual"), ("on_fulfillment", "manual")],
)
def test_given_a_capture_mode_then_stripe_charges_at_once_only_when_automatic(mode, method):
    assert stripe_capture_method(mode) == method
    assert mode_of(method, on_fulfillment=mode == "on_fulfillment") == CaptureMode(mode)


def test_given_an_unknown_mode_then_it_is_refused():
    with pytest.raises(ValueError):
        stripe_capture_method("later")
