#!/usr/bin/env python3
"""CPU per request in our own Python, measured in-process: a loaded machine does not spoil it.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench .venv/bin/python bench/request_cpu.py
    .venv/bin/python bench/request_cpu.py --requests 300 --gateway localstripe
    .venv/bin/python bench/request_cpu.py --only refund --profile 25     # cProfile's top 25
    SHOPKEEPER_DEBUG=1 .venv/bin/python bench/request_cpu.py             # as a DEBUG server runs

Each path is called through Django's WSGI handler (what `shopkeeper serve` runs, without the
HTTP server around it) with a hand-built WSGI environ, one request after another:

  refund          POST /api/admin/orders/{number}/refunds, 1.00 of a paid order, a bearer token
                  and an Idempotency-Key (a manager's token, used a moment ago);
  checkout        POST /api/checkout, one line;
  webhook_new     POST /webhooks/stripe, a signed `payment_intent.succeeded` with a new id;
  webhook_dup     the same signed event again and again (stored once beforehand).

`time.process_time()` (this process's CPU, user + system, every thread) over `--requests`
requests after `--warmup` untimed ones, so time spent waiting for PostgreSQL or localstripe,
and the other work on the machine, is not counted; PostgreSQL's own CPU is not either. The
Stripe side is the test suite's in-memory FakeGateway (`--gateway fake`, the default: no HTTP)
or a localstripe started here (`--gateway localstripe`: the Stripe SDK's request and parsing
CPU counted too). Statements are counted on one more request of each path.

Output: one line per path, ms of CPU per request (median of `--rounds` rounds), ms wall per
request (waits included: noisy on a loaded machine), and statements; `--json` prints them as
JSON. With DATABASE_URL the tables are migrated into that database: give it one of its own.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from refund_latency import bench_database, start_localstripe  # noqa: E402
from webhook_throughput import event_body  # noqa: E402

PATHS = ("refund", "checkout", "webhook_new", "webhook_dup")
PER_ORDER = 25  # 1.00 refunds of a 55.00 order
SKU = "BENCH-CPU"
ADDRESS = {"name": "B", "line1": "1 St", "city": "X", "postal_code": "1", "country": "US"}

Environ = dict[str, Any]
Request = Callable[[], Environ]


@dataclass
class Measured:
    path: str
    cpu_ms: list[float]
    wall_ms: list[float]
    statements: int

    def line(self) -> dict[str, object]:
        return {
            "path": self.path,
            "cpu_ms_per_request": round(statistics.median(self.cpu_ms), 2),
            "cpu_ms_rounds": [round(ms, 2) for ms in self.cpu_ms],
            "wall_ms_per_request": round(statistics.median(self.wall_ms), 2),
            "statements": self.statements,
        }


def configure(tmp: str, gateway: str) -> Any:
    """Settings as the bench servers run: DEBUG off unless SHOPKEEPER_DEBUG says otherwise,
    quiet logs, the Stripe limiter off (as in the throughput benches)."""
    os.environ["DATABASE_URL"] = bench_database()
    os.environ.setdefault("SHOPKEEPER_DEBUG", "0")
    os.environ.setdefault("STRIPE_MAX_REQUESTS_PER_SECOND", "0")
    os.environ["SHOPKEEPER_LOG_LEVEL"] = "WARNING"
    os.environ["SHOPKEEPER_DATA_DIR"] = tmp
    os.environ["DJANGO_SETTINGS_MODULE"] = "shopkeeper.settings"
    if gateway == "localstripe":
        _, api_base = start_localstripe()
        os.environ["STRIPE_API_BASE"] = api_base
    else:
        os.environ.pop("STRIPE_API_BASE", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def environ(method: str, path: str, body: bytes, headers: dict[str, str]) -> Environ:
    """A WSGI environ as gunicorn hands it to Django."""
    meta: Environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8700",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8700",
        "HTTP_USER_AGENT": "bench/request_cpu",
        "HTTP_ACCEPT": "application/json",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name, value in headers.items():
        meta["HTTP_" + name.upper().replace("-", "_")] = value
    return meta


def call(app: Any, meta: Environ, expect: int) -> bytes:
    status: list[str] = []

    def start_response(line: str, headers: list[tuple[str, str]], *exc_info: Any) -> None:
        status.append(line)

    response = app(meta, start_response)
    try:
        body = b"".join(response)
    finally:
        response.close()
    if not status or int(status[0].split()[0]) != expect:
        raise SystemExit(f"{meta['PATH_INFO']}: {status} {body[:300]!r}")
    return body


def refund_requests(gateway: Any, count: int) -> Iterator[Environ]:
    from refund_latency import paid_orders, staff

    from shopkeeper.accounts.models import ApiToken

    _, token = staff()
    ApiToken.objects.update(last_used_at=None)  # written once on the first (warm-up) request
    numbers = paid_orders(-(-count // PER_ORDER), gateway)
    body = json.dumps({"amount": "1.00", "reason": "requested_by_customer"}).encode()
    run = f"{time.time():.0f}"
    for i in range(count):
        yield environ(
            "POST",
            f"/api/admin/orders/{numbers[i // PER_ORDER]}/refunds",
            body,
            {"Authorization": f"Bearer {token}", "Idempotency-Key": f"cpu-{run}-{i}"},
        )


def checkout_requests(count: int) -> Iterator[Environ]:
    from shopkeeper.catalog.models import Product
    from shopkeeper.catalog.services import create_product

    if not Product.objects.filter(sku=SKU).update(stock=10**9):
        create_product(sku=SKU, name="Bench mug", price="10.00", currency="USD", stock=10**9)
    body = json.dumps(
        {
            "email": "bench@example.com",
            "items": [{"sku": SKU, "quantity": 1}],
            "shipping_address": ADDRESS,
        }
    ).encode()
    for _ in range(count):
        yield environ("POST", "/api/checkout", body, {})


def webhook_requests(count: int, duplicate: bool) -> Iterator[Environ]:
    from django.conf import settings
    from tests.fakes import sign_payload

    run = f"{time.time_ns()}"
    for i in range(count):
        body = event_body(f"evt_cpu_{run}" if duplicate else f"evt_cpu_{run}_{i}")
        signed = sign_payload(body, settings.STRIPE_WEBHOOK_SECRET)
        yield environ("POST", "/webhooks/stripe", body, {"Stripe-Signature": signed})


def requests_for(path: str, gateway: Any, count: int) -> tuple[list[Environ], int]:
    """`count` requests for `path` (environ built beforehand, untimed) and the status expected."""
    if path == "refund":
        return list(refund_requests(gateway, count)), 201
    if path == "checkout":
        return list(checkout_requests(count)), 201
    return list(webhook_requests(count, duplicate=path == "webhook_dup")), 200


@contextmanager
def statement_counter() -> Iterator[list[str]]:
    from django.db import connection

    seen: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield seen


def measure(app: Any, gateway: Any, path: str, args: argparse.Namespace) -> Measured:
    cpu_ms: list[float] = []
    wall_ms: list[float] = []
    per_round = args.requests
    # One to store the duplicate, the warm-up, the rounds, one to count statements on.
    requests, expect = requests_for(path, gateway, 1 + args.warmup + per_round * args.rounds + 1)
    call(app, requests.pop(0), expect)  # a duplicate's event is stored: the rest are duplicates
    counted = requests.pop()
    for meta in requests[: args.warmup]:
        call(app, meta, expect)
    todo = requests[args.warmup :]
    profile = cProfile.Profile(time.process_time) if args.profile else None
    for r in range(args.rounds):
        batch = todo[r * per_round : (r + 1) * per_round]
        if profile is not None:
            profile.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        for meta in batch:
            call(app, meta, expect)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if profile is not None:
            profile.disable()
        cpu_ms.append(cpu * 1000 / len(batch))
        wall_ms.append(wall * 1000 / len(batch))
    with statement_counter() as statements:
        call(app, counted, expect)
    if profile is not None:
        if args.profile_out:
            profile.dump_stats(f"{args.profile_out}.{path}")
        out = io.StringIO()
        stats = pstats.Stats(profile, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(args.profile)
        stats.sort_stats("cumulative").print_stats(args.profile)
        print(f"--- {path}: cProfile, CPU time (its overhead inflates the CPU above) ---")
        print(out.getvalue())
    return Measured(path, cpu_ms, wall_ms, len(statements))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--only", choices=PATHS, action="append", help="a path (repeatable)")
    parser.add_argument("--gateway", choices=("fake", "localstripe"), default="fake")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile's top N")
    parser.add_argument("--profile-out", metavar="FILE", help="also dump the profile (pstats)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shopkeeper-cpu-") as tmp:
        app = configure(tmp, args.gateway)
        from django.conf import settings
        from tests.fakes import FakeGateway

        from shopkeeper.payments.provider import gateway_from_settings, use_gateway

        # Ids of their own, so that a database kept from an earlier run takes them too.
        fresh_ids = itertools.count(time.time_ns() // 1000)
        gateway = FakeGateway(_ids=fresh_ids) if args.gateway == "fake" else gateway_from_settings()
        results = []
        for path in args.only or PATHS:
            # A webhook asks Stripe nothing: its signature is checked by the settings' adapter.
            used = gateway if path in ("refund", "checkout") else gateway_from_settings()
            with use_gateway(used):
                results.append(measure(app, gateway, path, args).line())
        setup = {"debug": settings.DEBUG, "gateway": args.gateway, "requests": args.requests}
        if args.json:
            print(json.dumps({"setup": setup, "paths": results}))
            return
        print(f"# {json.dumps(setup)}, load average {os.getloadavg()[0]:.1f}")
        for row in results:
            print(
                f"{row['path']:<12} {row['cpu_ms_per_request']:7.2f} ms CPU/request "
                f"(rounds {row['cpu_ms_rounds']})  {row['wall_ms_per_request']:7.2f} ms wall  "
                f"{row['statements']} statements"
            )


if __name__ == "__main__":
    main()
