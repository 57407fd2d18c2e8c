"""Reconciliation paces its requests to Stripe and counts them (reconciliation.listing.Pacer)."""

from __future__ import annotations

from shopkeeper.reconciliation.listing import Pacer, paced


class Clock:
    """A clock that moves only when slept on (or told to)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_given_ten_a_second_then_each_request_waits_a_tenth_after_the_one_before() -> None:
    clock = Clock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)

    for _ in range(3):
        pacer.call(lambda: None)

    assert clock.slept == [0.1, 0.1] and pacer.requests == 3


def test_given_stripe_slower_than_the_pace_then_no_wait() -> None:
    clock = Clock()
    pacer = Pacer(10, clock=clock, sleep=clock.sleep)

    def slow_read() -> None:
        clock.now += 0.25

    pacer.call(slow_read)
    pacer.call(slow_read)

    assert clock.slept == [] and pacer.requests == 2


def test_given_no_pace_then_requests_are_only_counted() -> None:
    clock = Clock()
    pacer = Pacer(0, clock=clock, sleep=clock.sleep)

    for _ in range(5):
        pacer.call(lambda: None)

    assert clock.slept == [] and pacer.requests == 5


def test_given_a_list_then_each_page_is_one_paced_request_and_its_end_none() -> None:
    clock = Clock()
    pacer = Pacer(4, clock=clock, sleep=clock.sleep)

    pages = list(paced(iter([[1, 2], [3]]), pacer))

    assert pages == [[1, 2], [3]]
    assert pacer.requests == 2 and clock.slept == [0.25, 0.25]
