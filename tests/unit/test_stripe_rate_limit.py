"""The limiter's arithmetic and the 429 advice, without a database."""

from __future__ import annotations

import email.utils
import math

import pytest

from shopkeeper.payments.stripe.paced_http import retry_delay
from shopkeeper.payments.stripe.rate_limit import JITTER, Pace, endpoint_of


@pytest.mark.parametrize("limit", [1, 2, 5, 20, 25, 50, 80, 100, 1000])
def test_given_a_limit_then_a_window_of_one_second_plus_the_jitter_holds_at_most_it(limit):
    """A burst at t, then one every interval: those before t + 1 + JITTER."""
    pace = Pace(limit)

    in_window = pace.burst + math.ceil((1 + JITTER) * pace.rate - 1e-9) - 1

    assert in_window <= limit
    assert pace.interval > 0 and pace.tolerance >= 0


def test_given_the_default_limits_then_the_paces():
    assert (Pace(20).burst, round(Pace(20).rate, 2)) == (1, 15.83)
    assert (Pace(80).burst, round(Pace(80).rate, 2)) == (4, 63.33)


@pytest.mark.parametrize(
    ("method", "url", "endpoint"),
    [
        ("post", "https://api.stripe.com/v1/refunds", "POST /v1/refunds"),
        ("get", "https://api.stripe.com/v1/refunds/re_3Nabc", "GET /v1/refunds/{id}"),
        (
            "post",
            "http://127.0.0.1:8420/v1/payment_intents/pi_1Q2w/capture",
            "POST /v1/payment_intents/{id}/capture",
        ),
        ("get", "https://api.stripe.com/v1/charges?payment_intent=pi_1", "GET /v1/charges"),
    ],
)
def test_given_a_request_then_its_endpoint_names_no_object(method, url, endpoint):
    assert endpoint_of(method, url) == endpoint


def test_given_should_retry_false_then_no_retry_whatever_retry_after():
    headers = {"Stripe-Should-Retry": "false", "Retry-After": "1"}

    assert retry_delay(headers, 0, now=0.0) is None


def test_given_retry_after_in_seconds_or_as_a_date_then_that_wait():
    when = email.utils.formatdate(1_000_003.0, usegmt=True)

    assert retry_delay({"Retry-After": "2"}, 0, now=0.0) == 2.0
    assert retry_delay({"Retry-After": when}, 0, now=1_000_000.0) == 3.0


def test_given_no_advice_then_backs_off_exponentially_up_to_4_seconds():
    delays = [
        retry_delay({"Stripe-Should-Retry": "true"}, attempt, now=0.0) for attempt in range(6)
    ]

    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
