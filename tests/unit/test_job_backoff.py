"""Job retry schedules (shopkeeper.jobs.backoff): explicit delays, then the job fails."""

from __future__ import annotations

from procrastinate import jobs

from shopkeeper.jobs.backoff import Backoff, exponential


def job_after(attempts: int) -> jobs.Job:
    return jobs.Job(
        id=1, queue="default", lock=None, queueing_lock=None, task_name="t", attempts=attempts
    )


def retry_seconds(backoff: Backoff, attempts: int, error: BaseException) -> float | None:
    decision = backoff.get_retry_decision(exception=error, job=job_after(attempts))
    if decision is None:
        return None
    assert decision.retry_at is not None
    from django.utils import timezone

    return round((decision.retry_at - timezone.now()).total_seconds())


def test_given_delays_when_a_job_fails_then_each_retry_waits_its_delay_and_the_last_try_fails():
    backoff = Backoff((60, 300, 1800))

    waits = [retry_seconds(backoff, attempts, RuntimeError()) for attempts in range(4)]

    assert waits == [60, 300, 1800, None]
    assert backoff.tries == 4


def test_given_retry_on_when_another_error_then_no_retry():
    backoff = Backoff((60,), retry_on=(KeyError,))

    assert retry_seconds(backoff, 0, ValueError()) is None
    assert retry_seconds(backoff, 0, KeyError()) == 60


def test_exponential_delays():
    assert exponential(first=10, factor=4, tries=6) == (10, 40, 160, 640, 2560)
