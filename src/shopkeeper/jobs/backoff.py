"""Retry schedules for jobs: explicit delays, so the schedule is read where it is set."""

from __future__ import annotations

from collections.abc import Sequence

from procrastinate import jobs
from procrastinate.retry import BaseRetryStrategy, RetryDecision


class Backoff(BaseRetryStrategy):
    """Retry after each delay in turn (seconds); after the last, the job fails.

    A job that fails its first run waits `delays[0]`, then `delays[1]`, ...: `len(delays) + 1`
    tries in all. Only `retry_on` exceptions are retried (all, by default).
    """

    def __init__(
        self, delays: Sequence[float], retry_on: tuple[type[BaseException], ...] = (Exception,)
    ) -> None:
        self.delays = tuple(delays)
        self.retry_on = retry_on

    @property
    def tries(self) -> int:
        return len(self.delays) + 1

    def get_retry_decision(
        self, *, exception: BaseException, job: jobs.Job
    ) -> RetryDecision | None:
        if not isinstance(exception, self.retry_on) or job.attempts >= len(self.delays):
            return None
        return RetryDecision(retry_in={"seconds": round(self.delays[job.attempts])})


def exponential(*, first: float, factor: float, tries: int) -> tuple[float, ...]:
    """The delays before each retry of `tries` runs: first, first*factor, first*factor**2, ..."""
    return tuple(first * factor**n for n in range(tries - 1))
