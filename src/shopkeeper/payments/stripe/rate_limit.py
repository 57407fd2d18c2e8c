"""Stripe's rate limit, kept by every server, worker and command together, in PostgreSQL.

Every request to Stripe first takes a turn here (`paced_http.PacedRequestsClient` asks before
each HTTP request the SDK sends, list pages included). A turn is reserved in two buckets at
once: the account's (`STRIPE_MAX_REQUESTS_PER_SECOND`) and the endpoint's
(`STRIPE_MAX_REQUESTS_PER_SECOND_PER_ENDPOINT`; Stripe limits each endpoint, e.g.
`POST /v1/refunds`, to 25/s by default in both modes). The reservation is one call of the
`stripe_rate_reserve` function (payments migration 0004) on this module's own autocommit
connection: never Django's, so it never joins a request's transaction nor holds a lock there.
It answers how long to sleep before sending; the database's clock is the only clock.

Why PostgreSQL and not Redis: every install has it (the embedded one of `dev.py run` too),
Redis is not guaranteed; a reservation costs one round trip (its commit does not wait for the
WAL's flush: a reservation lost in a crash costs nothing), about a millisecond, well below the
16 ms between requests at 80/s (bench/stripe_limiter.py).

A bucket of limit L lets `burst` requests go at once and then one every `interval` seconds
(`Pace`), so that no window of one second ever holds more than L, even when requests reach
Stripe up to 200 ms after their turn: it sends about 80% of L a second when saturated.

When the database cannot be reached the limiter lets requests through (and logs it): Stripe's
own 429s, which `paced_http` backs off on, are then the only limit. A limit of 0 turns it off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import psycopg
from django.conf import settings
from django.db import connections

logger = logging.getLogger(__name__)

RESERVE = "SELECT stripe_rate_reserve(%s, %s, %s, %s, %s)"
HOLD = """
UPDATE payments_stripe_rate_bucket
SET rate_limited = rate_limited + 1,
    theoretical_arrival = GREATEST(
        theoretical_arrival, clock_timestamp() + make_interval(secs => %s)
    )
WHERE name = ANY(%s)
"""
# After the database failed, requests go unlimited this long before it is tried again, so an
# outage does not add a connection attempt to every Stripe call.
RETRY_DATABASE_AFTER = 5.0
CONNECT_TIMEOUT = 3
# The longest a request may reach Stripe after its turn, as a share of a second, that still
# keeps every one-second window within the limit (`Pace`).
JITTER = 0.2
# Woken up later than this after its turn, a request takes a new turn (at most TURNS in all),
# so what is left of JITTER covers the way from here to Stripe.
LATE = 0.08
TURNS = 3
# A path segment with a digit or a capital is an object's id (pi_3Nx..., re_1Q...): resource
# names (payment_intents, refunds, capture) have neither; the API version (v1) is no id.
_ID_SEGMENT = re.compile(r"^(?!v[0-9]+$).*[0-9A-Z]")


@dataclass(frozen=True)
class Pace:
    """What a limit of `limit` requests a second lets through, as a GCRA: `burst` at once, then
    one every `interval` seconds, at `rate` = (limit - burst) / (1 + JITTER).

    A request reaches Stripe some time after its turn (the reply from the database, waking up,
    the network; tens of milliseconds on a busy machine), never before it: so a one-second
    window at Stripe holds the turns of up to 1 + JITTER seconds, at most
    burst + rate x (1 + JITTER) = limit of them."""

    limit: int

    @property
    def burst(self) -> int:
        return max(1, self.limit // 20)

    @property
    def rate(self) -> float:
        return max(self.limit - self.burst, self.limit / 2) / (1 + JITTER)

    @property
    def interval(self) -> float:
        return 1.0 / self.rate

    @property
    def tolerance(self) -> float:
        return (self.burst - 1) * self.interval


def endpoint_of(method: str, url: str) -> str:
    """Stripe's endpoint for a request: its method and path, object ids replaced by {id}
    (`GET /v1/payment_intents/{id}`), as Stripe counts its per-endpoint limits."""
    segments = urlsplit(url).path.split("/")
    path = "/".join("{id}" if _ID_SEGMENT.search(part) else part for part in segments)
    return f"{method.upper()} {path}"


class RateLimiter(Protocol):
    def wait_turn(self, method: str, url: str, *, max_wait: float) -> bool:
        """Sleep until this request may be sent. False (nothing reserved, nothing slept) when
        more are queued ahead of it than can go within `max_wait` seconds."""

    def hold(self, method: str, url: str, seconds: float) -> None:
        """Stripe answered 429: count it, and let nobody call that endpoint, nor the account,
        for `seconds`."""


class Unlimited:
    """The limiter when STRIPE_MAX_REQUESTS_PER_SECOND is 0 (and in tests that build a gateway
    without one)."""

    def wait_turn(self, method: str, url: str, *, max_wait: float) -> bool:
        return True

    def hold(self, method: str, url: str, seconds: float) -> None:
        return None


class StripeRateLimiter:
    """The shared limiter: one autocommit connection per process (made again after a fork),
    shared by the process's threads."""

    def __init__(
        self,
        *,
        connection_params: Callable[[], Mapping[str, Any]],
        scope: str,
        account: Pace,
        endpoint: Pace | None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connection_params = connection_params
        self._scope = scope
        self._account = account
        self._endpoint = endpoint
        self._sleep = sleep
        self._lock = threading.Lock()
        self._connection: psycopg.Connection[Any] | None = None
        self._pid = os.getpid()
        self._inherited: list[psycopg.Connection[Any]] = []
        self._skip_until = 0.0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scope={self._scope!r}, limit={self._account.limit})"

    def buckets(self, method: str, url: str) -> list[tuple[str, Pace]]:
        buckets = [(self._scope, self._account)]
        if self._endpoint is not None:
            buckets.append((f"{self._scope} {endpoint_of(method, url)}", self._endpoint))
        return buckets

    def wait_turn(self, method: str, url: str, *, max_wait: float) -> bool:
        """A thread that wakes up long after its turn (a busy machine) would send in the turns
        of later requests, bunching them: it takes a new turn instead (see `LATE`)."""
        buckets = self.buckets(method, url)
        names = [name for name, _ in buckets]
        intervals = [pace.interval for _, pace in buckets]
        tolerances = [pace.tolerance for _, pace in buckets]
        deadline = time.monotonic() + max_wait
        for turn in range(TURNS):
            asked_at = time.monotonic()
            remaining = max(0.0, deadline - asked_at)
            counted = 1 if turn == 0 else 0  # one request, however many turns
            row = self._execute(RESERVE, (names, intervals, tolerances, remaining, counted))
            if row is None:  # the database failed: unlimited (see the module docstring)
                return True
            wait = row[0]
            if wait is None:
                return False
            if wait > 0:
                self._sleep(wait)
            if time.monotonic() - (asked_at + wait) <= LATE:
                return True
            logger.info("Stripe rate limiter: woke up late for a turn; taking another")
        return True

    def hold(self, method: str, url: str, seconds: float) -> None:
        names = [name for name, _ in self.buckets(method, url)]
        self._execute(HOLD, (seconds, names), fetch=False)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    def _execute(self, sql: str, params: Any, *, fetch: bool = True) -> tuple[Any, ...] | None:
        with self._lock:
            if time.monotonic() < self._skip_until:
                return None
            try:
                cursor = self._connected().execute(sql, params)
                return cursor.fetchone() if fetch else ()
            except psycopg.Error as error:
                logger.warning(
                    "Stripe rate limiter: database unavailable (%s); requests go unlimited "
                    "for %g s",
                    type(error).__name__,
                    RETRY_DATABASE_AFTER,
                )
                self._drop_connection()
                self._skip_until = time.monotonic() + RETRY_DATABASE_AFTER
                return None

    def _connected(self) -> psycopg.Connection[Any]:
        if self._pid != os.getpid():  # a forked child: the parent's socket is not ours to use
            if self._connection is not None:
                self._inherited.append(self._connection)  # never closed here, never collected
            self._connection, self._pid = None, os.getpid()
        if self._connection is None or self._connection.closed:
            params = {
                "connect_timeout": CONNECT_TIMEOUT,
                **self._connection_params(),
                "autocommit": True,
                "application_name": "shopkeeper stripe limiter",
            }
            connection = psycopg.connect(**params)
            # A reservation lost in a crash costs nothing: no waiting for the WAL's flush.
            connection.execute("SET synchronous_commit TO off")
            self._connection = connection
        return self._connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(psycopg.Error):
                self._connection.close()
        self._connection = None


def is_test_mode(secret_key: str, api_base: str | None) -> bool:
    """Stripe's test mode (and any emulator) has the lower limits."""
    return api_base is not None or secret_key.startswith(("sk_test_", "rk_test_"))


_shared: dict[tuple[str, int, int], RateLimiter] = {}
_shared_lock = threading.Lock()


def shared_limiter() -> RateLimiter:
    """This process's limiter for the settings' Stripe account: one per process, whatever the
    number of gateways built (`payments.provider` builds one per use)."""
    scope = "test" if is_test_mode(settings.STRIPE_SECRET_KEY, settings.STRIPE_API_BASE) else "live"
    limit = settings.STRIPE_MAX_REQUESTS_PER_SECOND
    per_endpoint = min(settings.STRIPE_MAX_REQUESTS_PER_SECOND_PER_ENDPOINT, limit)
    key = (scope, limit, per_endpoint)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = (
                Unlimited()
                if limit <= 0
                else StripeRateLimiter(
                    connection_params=database_params,
                    scope=scope,
                    account=Pace(limit),
                    endpoint=Pace(per_endpoint) if per_endpoint > 0 else None,
                )
            )
        return _shared[key]


def database_params() -> dict[str, Any]:
    """Django's database, as psycopg's connect() takes it (read when connecting, so a test
    run's test database is the one used)."""
    params = connections["default"].get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    return params
