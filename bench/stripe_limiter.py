#!/usr/bin/env python3
"""The shared Stripe rate limiter: three processes offering twice the limit, and its cost.

    .venv/bin/python bench/stripe_limiter.py                    # an embedded PostgreSQL
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench \
        .venv/bin/python bench/stripe_limiter.py

1. Limited: three processes (each its own limiter, so its own database connection, as three
   servers or workers) together offer 2 x `--limit` requests a second for `--seconds`, open
   loop, through the real gateway (`StripeGateway.retrieve_refund`, the SDK, the paced HTTP
   client) to a counting stub of Stripe (tests/stripe_stub.py). The stub's arrival times give
   the most requests in any one-second window, against the limit.
2. Not limited: one process, one call at a time, alternating a limiter whose limit is far above
   the load (no call waits: what is left is the reservation's round trip) with no limiter; the
   p50 of the difference is the limiter's added latency per call.

With DATABASE_URL the tables are migrated into that database: give it one of its own.
Output: one JSON line per phase and a summary line.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]


def bench_database() -> str:
    """DATABASE_URL, or else an embedded PostgreSQL (fsync off) in a temporary directory of its
    own, stopped and removed at exit."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from shopkeeper.demo.embedded_postgres import database_url, ensure_database, start

    data = Path(tempfile.mkdtemp(prefix="shopkeeper-bench-"))
    server = start(data / "postgres", fast=True)
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    atexit.register(server.stop)
    ensure_database(server, "bench")
    return database_url(server, "bench")


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopkeeper.settings")
    os.environ.setdefault("SHOPKEEPER_LOG_LEVEL", "WARNING")
    import django

    django.setup()


def gateway(url: str, limiter: object) -> object:
    from shopkeeper.payments.stripe.client import StripeGateway

    return StripeGateway(
        secret_key="sk_test_bench_limiter",
        webhook_secret="whsec_bench",
        api_base=url,
        timeout=30,
        limiter=limiter,  # type: ignore[arg-type]
        rate_limit_max_wait=60,
    )


def limiter(scope: str, limit: int) -> object:
    from shopkeeper.payments.stripe.rate_limit import Pace, StripeRateLimiter, database_params

    return StripeRateLimiter(
        connection_params=database_params, scope=scope, account=Pace(limit), endpoint=None
    )


def worker(url: str, scope: str, limit: int, rate: float, seconds: float) -> None:
    """One process: `rate` calls a second for `seconds`, each on a thread of its own."""
    setup_django()
    paced = gateway(url, limiter(scope, limit))
    started = time.monotonic()
    count = int(rate * seconds)
    with ThreadPoolExecutor(max_workers=min(count, 32)) as pool:
        for n in range(count):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            pool.submit(paced.retrieve_refund, f"re_{os.getpid()}x{n}")  # type: ignore[attr-defined]


def limited(url: str, limit: int, seconds: float, processes: int) -> dict[str, object]:
    scope = f"bench-{uuid.uuid4().hex[:8]}"
    offered = 2 * limit
    command = [sys.executable, __file__, "--worker", url, scope, str(limit)]
    args = [str(offered / processes), str(seconds)]
    started = time.monotonic()
    children = [subprocess.Popen([*command, *args]) for _ in range(processes)]
    codes = [child.wait(timeout=seconds * 4 + 60) for child in children]
    took = time.monotonic() - started
    from shopkeeper.payments.models import StripeRateBucket

    bucket = StripeRateBucket.objects.get(name=scope)
    return {
        "phase": "limited",
        "codes": codes,
        "took_s": round(took, 2),
        "scope": scope,
        "offered_per_s": offered,
        "limit": limit,
        "waits": bucket.waits,
        "wait_seconds": round(bucket.wait_seconds, 1),
        "requests": bucket.requests,
    }


def not_limited(url: str, calls: int) -> dict[str, object]:
    from shopkeeper.payments.stripe.rate_limit import Unlimited

    shared = limiter(f"bench-{uuid.uuid4().hex[:8]}", 100_000)
    paced, plain = gateway(url, shared), gateway(url, Unlimited())
    timings: dict[str, list[float]] = {"limited": [], "plain": []}
    for n in range(calls + 20):
        for name, each in (("limited", paced), ("plain", plain)):
            begun = time.perf_counter()
            each.retrieve_refund(f"re_quiet{n}")  # type: ignore[attr-defined]
            if n >= 20:  # warm-up: connections made, code loaded
                timings[name].append((time.perf_counter() - begun) * 1000)
    shared.close()  # type: ignore[attr-defined]
    p50 = {name: statistics.median(values) for name, values in timings.items()}
    p95 = {name: statistics.quantiles(values, n=20)[18] for name, values in timings.items()}
    return {
        "phase": "not_limited",
        "calls": calls,
        "p50_ms": {k: round(v, 3) for k, v in p50.items()},
        "p95_ms": {k: round(v, 3) for k, v in p95.items()},
        "added_p50_ms": round(p50["limited"] - p50["plain"], 3),
    }


def main() -> None:
    if sys.argv[1:2] == ["--worker"]:
        url, scope, limit, rate, seconds = sys.argv[2:7]
        worker(url, scope, int(limit), float(rate), float(seconds))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=20, help="requests a second (20)")
    parser.add_argument("--seconds", type=float, default=5.0, help="of offered load (5)")
    parser.add_argument("--processes", type=int, default=3, help="hammering processes (3)")
    parser.add_argument("--calls", type=int, default=300, help="quiet calls timed (300)")
    options = parser.parse_args()
    os.environ["DATABASE_URL"] = bench_database()
    setup_django()
    from django.core.management import call_command
    from tests.stripe_stub import CountingStripeStub, busiest_second

    call_command("migrate", verbosity=0)
    with CountingStripeStub() as stub:
        first = limited(stub.url, options.limit, options.seconds, options.processes)
        arrivals = stub.times()
        sent_for = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
        first.update(
            sent=len(arrivals),
            busiest=busiest_second(arrivals),
            sustained_per_s=round((len(arrivals) - 1) / sent_for, 1) if sent_for else 0,
        )
        print(json.dumps(first))
    with CountingStripeStub() as stub:
        second = not_limited(stub.url, options.calls)
        print(json.dumps(second))
    print(
        f"limit {options.limit}/s, offered {first['offered_per_s']}/s by {options.processes} "
        f"processes for {options.seconds:g} s: busiest second {first['busiest']} requests "
        f"(limit {options.limit}), {first['sustained_per_s']}/s sustained; added latency "
        f"when not limited p50 {second['added_p50_ms']} ms "
        f"({second['p50_ms']['limited']} vs {second['p50_ms']['plain']} ms a call)"
    )


if __name__ == "__main__":
    main()
