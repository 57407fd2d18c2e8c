"""The shared Stripe rate limiter (payments/stripe/rate_limit.py) on the test's PostgreSQL.

Three "processes" (threads, each with its own limiter and so its own database connection, as
three servers or workers have) call a counting stub of Stripe; the stub's own arrival times
show that no one-second window ever held more than the limit.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

import pytest

from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.payments.models import StripeRateBucket
from shopkeeper.payments.stripe.client import StripeGateway
from shopkeeper.payments.stripe.rate_limit import (
    Pace,
    StripeRateLimiter,
    Unlimited,
    database_params,
    shared_limiter,
)
from tests.stripe_stub import CountingStripeStub, busiest_second

pytestmark = pytest.mark.django_db


@pytest.fixture
def stub():
    with CountingStripeStub() as stub:
        yield stub


def limiter(scope: str, limit: int, endpoint: int | None = None) -> StripeRateLimiter:
    return StripeRateLimiter(
        connection_params=database_params,
        scope=scope,
        account=Pace(limit),
        endpoint=Pace(endpoint) if endpoint else None,
    )


def gateway(url: str, rate_limiter, *, max_wait: float = 10.0) -> StripeGateway:
    return StripeGateway(
        secret_key="sk_test_limiter",
        webhook_secret="whsec_limiter",
        api_base=url,
        timeout=5,
        limiter=rate_limiter,
        rate_limit_max_wait=max_wait,
    )


def in_three_processes(scope: str, limit: int, endpoint: int | None, calls) -> float:
    """Each of three limiters (three connections) makes its share of `calls(gateway, i)`."""
    limiters = [limiter(scope, limit, endpoint) for _ in range(3)]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            calls(limiters[index], index)
        except BaseException as error:  # reported below
            errors.append(error)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for each in limiters:
        each.close()
    assert not errors, errors
    return time.monotonic() - started


def test_given_three_processes_at_50_per_second_then_no_second_holds_more_than_50(stub):
    scope = f"t-{uuid.uuid4().hex[:8]}"

    def calls(rate_limiter, index):
        paced = gateway(stub.url, rate_limiter)
        for n in range(50):
            paced.retrieve_refund(f"re_{index}x{n}")

    took = in_three_processes(scope, 50, None, calls)

    arrivals = stub.times()
    assert len(arrivals) == 150
    assert busiest_second(arrivals) <= 50
    assert took >= 2.0  # 150 at ~45/s after a burst of 5: paced, not merely slow
    bucket = StripeRateBucket.objects.get(name=scope)
    assert bucket.requests == 150 and bucket.waits > 100 and bucket.wait_seconds > 0


def test_given_an_endpoint_limit_then_one_endpoint_stays_under_it_and_others_pass(stub):
    scope = f"t-{uuid.uuid4().hex[:8]}"

    def calls(rate_limiter, index):
        paced = gateway(stub.url, rate_limiter)
        for n in range(20):
            paced.retrieve_refund(f"re_{index}x{n}")
            if index == 0:
                paced.retrieve_payment_intent(f"pi_{n}X")

    in_three_processes(scope, 100, 20, calls)

    refunds, intents = stub.times("/v1/refunds/"), stub.times("/v1/payment_intents/")
    assert len(refunds) == 60 and len(intents) == 20
    assert busiest_second(refunds) <= 20
    assert StripeRateBucket.objects.get(name=f"{scope} GET /v1/refunds/{{id}}").requests == 60
    assert (
        StripeRateBucket.objects.get(name=f"{scope} GET /v1/payment_intents/{{id}}").requests == 20
    )


def test_given_a_queue_longer_than_the_wait_allowed_then_not_sent_and_certainly_not_done(stub):
    slow = limiter(f"t-{uuid.uuid4().hex[:8]}", 1)  # one request every 2 s
    paced = gateway(stub.url, slow, max_wait=0.5)
    paced.retrieve_refund("re_first")

    with pytest.raises(PaymentOutcomeUnknown) as unknown:
        paced.retrieve_refund("re_second")

    slow.close()
    assert not unknown.value.in_flight
    assert len(stub.times()) == 1  # the second was never sent, nor retried by the gateway


def test_given_the_database_is_unreachable_then_requests_go_unlimited_and_it_is_logged(
    stub, caplog
):
    unreachable = StripeRateLimiter(
        connection_params=lambda: {"host": "127.0.0.1", "port": 1, "dbname": "none"},
        scope="t-down",
        account=Pace(1),
        endpoint=None,
    )
    paced = gateway(stub.url, unreachable)

    with caplog.at_level(logging.WARNING, logger="shopkeeper.payments.stripe.rate_limit"):
        for n in range(3):
            paced.retrieve_refund(f"re_{n}")

    assert len(stub.times()) == 3
    assert "database unavailable" in caplog.text


def test_given_the_limit_is_0_then_the_limiter_is_off(settings):
    settings.STRIPE_MAX_REQUESTS_PER_SECOND = 0

    assert isinstance(shared_limiter(), Unlimited)


def test_given_a_limit_then_one_limiter_per_process_whatever_the_gateways(settings):
    settings.STRIPE_MAX_REQUESTS_PER_SECOND = 20

    assert shared_limiter() is shared_limiter()
    assert isinstance(shared_limiter(), StripeRateLimiter)


def test_given_a_429_seen_by_one_process_then_the_others_wait_it_out():
    scope = f"t-{uuid.uuid4().hex[:8]}"
    first = limiter(scope, 50, 25)
    slept: list[float] = []
    second = StripeRateLimiter(
        connection_params=database_params,
        scope=scope,
        account=Pace(50),
        endpoint=Pace(25),
        sleep=slept.append,  # records the wait instead of sleeping
    )
    refunds = "https://api.stripe.com/v1/refunds"
    assert first.wait_turn("post", refunds, max_wait=5)

    first.hold("post", refunds, 1.5)
    assert second.wait_turn("get", "https://api.stripe.com/v1/charges", max_wait=5)

    first.close()
    second.close()
    assert len(slept) >= 1 and 1.3 <= slept[0] <= 1.5  # the account is held for everyone
    assert StripeRateBucket.objects.get(name=scope).rate_limited == 1
    assert StripeRateBucket.objects.get(name=f"{scope} POST /v1/refunds").rate_limited == 1
