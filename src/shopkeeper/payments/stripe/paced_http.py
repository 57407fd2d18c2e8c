"""The Stripe SDK's HTTP client, paced: every request waits its turn at the shared limiter, and
a 429 is waited out here, below the gateway's retries.

A 429 means Stripe did not execute the request, so sending it again (with its same
idempotency key) cannot do it twice; it is no failure and takes none of the gateway's or the
refunds' retries. Before sending again this waits what Stripe asks (`Retry-After`, seconds or
an HTTP date) or else backs off (0.5, 1, 2, 4 s), and stops at once when Stripe says
`Stripe-Should-Retry: false`. All the waiting of one request, in the limiter's queue and after
429s, stays within `max_wait` (STRIPE_RATE_LIMIT_MAX_WAIT); past it the caller gets Stripe's
429 (or, when the queue alone is longer, one of ours, never sent), which the gateway reports
as an outcome unknown that certainly did not happen.
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from requests.structures import CaseInsensitiveDict

import stripe
from shopkeeper.payments.stripe.rate_limit import RateLimiter

logger = logging.getLogger(__name__)

BACKOFF = (0.5, 1.0, 2.0, 4.0)
QUEUE_FULL = json.dumps(
    {
        "error": {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "message": "Not sent: more Stripe requests are queued than can go within "
            "STRIPE_RATE_LIMIT_MAX_WAIT (Shopkeeper's rate limiter)",
        }
    }
).encode()

Response = tuple[Any, int, Mapping[str, str]]


def retry_delay(headers: Mapping[str, str], attempt: int, *, now: float) -> float | None:
    """Seconds to wait before sending again after a 429, or None when Stripe says not to."""
    if headers.get("Stripe-Should-Retry", "").lower() == "false":
        return None
    retry_after = headers.get("Retry-After", "").strip()
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            pass
        else:
            return max(0.0, when.timestamp() - now)
    return BACKOFF[min(attempt, len(BACKOFF) - 1)]


def queue_full() -> Response:
    headers = CaseInsensitiveDict(
        {"Content-Type": "application/json", "Stripe-Should-Retry": "false"}
    )
    return QUEUE_FULL, 429, headers


class PacedRequestsClient(stripe.RequestsClient):
    def __init__(
        self,
        *,
        timeout: float,
        limiter: RateLimiter,
        max_wait: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(timeout=timeout)
        self._limiter = limiter
        self._max_wait = max_wait
        self._sleep = sleep

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> Response:
        return self._paced(super().request, method, url, headers, post_data)

    def request_stream(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> Response:
        return self._paced(super().request_stream, method, url, headers, post_data)

    def _paced(
        self,
        send: Callable[..., Response],
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any,
    ) -> Response:
        deadline = time.monotonic() + self._max_wait
        attempt = 0
        while True:
            if not self._limiter.wait_turn(
                method, url, max_wait=max(0.0, deadline - time.monotonic())
            ):
                logger.warning(
                    "Stripe %s %s: not sent, the rate limiter's queue is full", method, url
                )
                return queue_full()
            response = send(method, url, headers, post_data)
            if response[1] != 429:
                return response
            delay = retry_delay(response[2], attempt, now=time.time())
            self._limiter.hold(method, url, delay or 0.0)
            if delay is None or time.monotonic() + delay > deadline:
                logger.warning(
                    "Stripe %s %s: 429, %s",
                    method,
                    url,
                    "Stripe says not to retry" if delay is None else "waited long enough",
                )
                return response
            logger.info("Stripe %s %s: 429, sending again in %.2f s", method, url, delay)
            self._sleep(delay)
            attempt += 1
