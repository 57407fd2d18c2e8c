#!/usr/bin/env python3
"""Checkout throughput against a bare PaymentIntent create, on one localstripe, in one run.

    .venv/bin/python bench/checkout_throughput.py                  # 1 and 8 clients, 2 rounds
    .venv/bin/python bench/checkout_throughput.py --seconds 10 --rounds 3 --clients 1,8
    DATABASE_CONN_MAX_AGE=60 .venv/bin/python bench/checkout_throughput.py   # reused connections
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench \
        .venv/bin/python bench/checkout_throughput.py

Two contenders, alternated (bare, checkout, bare, checkout, ...) at each client count:
- bare: `stripe.PaymentIntent.create` straight to localstripe through the Stripe SDK, with the
  parameters checkout sends (amount, currency, capture method, metadata, an idempotency key).
  Checkout does not confirm the PaymentIntent (the customer's browser does), so neither does
  the bare call.
- checkout: POST /api/checkout (one line) to a real `shopkeeper serve` (gunicorn, `--workers`
  x `--threads`) that talks to the same localstripe: the order, its stock, the PaymentIntent,
  the payment, their audit entries, the answer.
Each client is a thread keeping its own connection. The product has 10^9 units, so stock never
runs out. localstripe runs in memory (no pickle). With DATABASE_URL the tables are migrated into
that database: give it one of its own. The closing line is the ratio at the most clients
against the target (issue 9: at least 0.3 x the bare call at 8 clients).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from refund_latency import bench_database, free_port, start_localstripe  # noqa: E402

TARGET_RATIO = 0.3
WATCHED = ("server", "localstripe")
SKU = "BENCH-CHECKOUT"
STOCK = 10**9
ADDRESS = {"name": "B", "line1": "1 St", "city": "X", "postal_code": "1", "country": "US"}
BODY = json.dumps(
    {
        "email": "bench@example.com",
        "items": [{"sku": SKU, "quantity": 1}],
        "shipping_address": ADDRESS,
    }
).encode()


@dataclass
class Phase:
    """What the clients of one timed phase did, and the CPU the watched processes spent."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    cpu_seconds: dict[str, float] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children still running (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def prepare_database(tmp: str, capture: str) -> dict[str, str]:
    """Migrated tables and the bench product; the environment for the server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHOPKEEPER_"))}
    env["DATABASE_URL"] = bench_database()
    env.update(
        SHOPKEEPER_DATA_DIR=tmp,
        SHOPKEEPER_LOG_LEVEL="WARNING",
        SHOPKEEPER_CAPTURE=capture,
        DJANGO_SETTINGS_MODULE="shopkeeper.settings",
        # The bare contender is not paced, so neither is Shopkeeper here: at its test-mode
        # default (20/s) the shared Stripe limiter alone would cap checkouts near 16/s. The
        # limiter's own cost is measured in bench/stripe_limiter.py.
        STRIPE_MAX_REQUESTS_PER_SECOND=os.environ.get("STRIPE_MAX_REQUESTS_PER_SECOND", "0"),
    )
    shopkeeper = [sys.executable, "-m", "shopkeeper"]
    subprocess.run([*shopkeeper, "migrate", "-v0"], env=env, check=True)
    product = (
        "import django; django.setup()\n"
        "from shopkeeper.catalog.models import Product\n"
        "from shopkeeper.catalog.services import create_product\n"
        f"Product.objects.filter(sku={SKU!r}).update(stock={STOCK})\n"
        f"Product.objects.filter(sku={SKU!r}).exists() or create_product("
        f"sku={SKU!r}, name='Bench mug', price='10.00', currency='USD', stock={STOCK})\n"
    )
    subprocess.run([sys.executable, "-c", product], env=env, check=True)
    return env


def start_server(
    env: dict[str, str], api_base: str, workers: int, threads: int, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    serve = [sys.executable, "-m", "shopkeeper", "serve", "--port", str(port)]
    process = subprocess.Popen(
        [*serve, "--workers", str(workers), "--threads", str(threads)],
        env={**env, "STRIPE_API_BASE": api_base},
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/api/openapi.json")
            if connection.getresponse().status == 200:
                return process, port
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit(f"the server did not come up:\n{log.read_text()[-2000:]}")
        time.sleep(0.2)


def bare_client(api_base: str, capture: str) -> Callable[[int], None]:
    import stripe

    client = stripe.StripeClient(
        "sk_test_bench",
        base_addresses={"api": api_base},
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=10),
    )
    prefix = f"bench-{threading.get_ident()}-{time.monotonic_ns()}"

    def create(i: int) -> None:
        client.v1.payment_intents.create(
            params={
                "amount": 1500,
                "currency": "usd",
                "capture_method": capture,
                "metadata": {"order_number": f"{prefix}-{i}"},
            },
            options={"idempotency_key": f"{prefix}-{i}"},
        )

    return create


def checkout_client(port: int) -> Callable[[int], None]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}

    def checkout(i: int) -> None:
        connection.request("POST", "/api/checkout", body=BODY, headers=headers)
        response = connection.getresponse()
        answer = response.read()
        if response.status != 201:
            raise RuntimeError(f"checkout answered {response.status}: {answer[:300]!r}")

    return checkout


def run_phase(
    make_client: Callable[[], Callable[[int], None]],
    clients: int,
    seconds: float,
    watch: dict[str, int] | None = None,
) -> Phase:
    phase = Phase()
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)
    stop_at: list[float] = []

    def work() -> None:
        call = make_client()
        ready.wait()
        latencies, failures, i = [], [], 0
        while time.perf_counter() < stop_at[0]:
            started = time.perf_counter()
            try:
                call(i)
            except Exception as error:  # a failure is counted, not fatal
                failures.append(f"{type(error).__name__}: {error}"[:300])
                call = make_client()
            else:
                latencies.append(time.perf_counter() - started)
            i += 1
        with lock:
            phase.latencies += latencies
            phase.failures += failures

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    watch = watch or {}
    cpu_before = {name: cpu_seconds(pid) for name, pid in watch.items()}
    stop_at.append(time.perf_counter() + seconds)
    started = time.perf_counter()
    ready.wait()
    for thread in threads:
        thread.join()
    phase.seconds = time.perf_counter() - started
    phase.cpu_seconds = {name: cpu_seconds(pid) - cpu_before[name] for name, pid in watch.items()}
    return phase


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(phases: list[Phase]) -> dict[str, object]:
    latencies = [latency for phase in phases for latency in phase.latencies]
    seconds = sum(phase.seconds for phase in phases)
    cpu = {name: sum(phase.cpu_seconds.get(name, 0.0) for phase in phases) for name in WATCHED}
    return {
        "per_second": round(len(latencies) / seconds, 1) if seconds else 0.0,
        "done": len(latencies),
        "failed": sum(len(phase.failures) for phase in phases),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p95_ms": round(1000 * percentile(latencies, 0.95), 1) if latencies else None,
        # CPU per request done: the server (gunicorn and its workers) and localstripe.
        **{
            f"{name}_cpu_ms_each": round(1000 * cpu[name] / len(latencies), 2)
            if latencies
            else None
            for name in WATCHED
        },
        "first_failures": [f for phase in phases for f in phase.failures][:3],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,8", help="client counts, comma-separated (1,8)")
    parser.add_argument("--seconds", type=float, default=10, help="seconds per phase (10)")
    parser.add_argument("--rounds", type=int, default=2, help="bare/checkout pairs per count (2)")
    parser.add_argument("--workers", type=int, default=2, help="server workers (2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (4)")
    parser.add_argument("--capture", choices=("automatic", "manual"), default="automatic")
    args = parser.parse_args()
    counts = [int(count) for count in args.clients.split(",")]
    localstripe, api_base = start_localstripe()
    results: dict[int, dict[str, dict[str, object]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = prepare_database(tmp, args.capture)
            server, port = start_server(env, api_base, args.workers, args.threads, Path(tmp, "log"))
            try:
                run_phase(lambda: checkout_client(port), 2, 2)  # warm-up: workers, connections
                run_phase(lambda: bare_client(api_base, args.capture), 2, 1)
                watch = {"server": server.pid, "localstripe": localstripe.pid}
                for clients in counts:
                    bare: list[Phase] = []
                    checkout: list[Phase] = []
                    for _ in range(args.rounds):
                        make_bare = lambda: bare_client(api_base, args.capture)  # noqa: E731
                        bare.append(run_phase(make_bare, clients, args.seconds, watch))
                        make_checkout = lambda: checkout_client(port)  # noqa: E731
                        checkout.append(run_phase(make_checkout, clients, args.seconds, watch))
                    results[clients] = {"bare": summary(bare), "checkout": summary(checkout)}
            finally:
                server.terminate()
                server.wait(timeout=30)
    finally:
        localstripe.terminate()
        localstripe.wait(timeout=10)
    load = os.getloadavg()
    conn_max_age = os.environ.get("DATABASE_CONN_MAX_AGE", "600 (the default)")
    print(
        json.dumps(
            {
                "results": results,
                "workers": args.workers,
                "threads": args.threads,
                "capture": args.capture,
                "seconds_per_phase": args.seconds,
                "rounds": args.rounds,
                "database_conn_max_age": conn_max_age,
                "loadavg": [round(value, 2) for value in load],
            }
        )
    )
    for clients, pair in results.items():
        bare_rate, checkout_rate = pair["bare"]["per_second"], pair["checkout"]["per_second"]
        ratio = float(checkout_rate) / float(bare_rate) if bare_rate else 0.0  # type: ignore[arg-type]
        ours, bare = pair["checkout"], pair["bare"]
        print(
            f"{clients} client(s): checkout {checkout_rate}/s (p50 {ours['p50_ms']} ms, "
            f"p95 {ours['p95_ms']} ms), bare PaymentIntent create {bare_rate}/s "
            f"(p50 {bare['p50_ms']} ms, p95 {bare['p95_ms']} ms): ratio {ratio:.2f}; "
            f"server CPU {ours['server_cpu_ms_each']} ms per checkout"
        )
    most = max(results)
    bare_rate = float(results[most]["bare"]["per_second"])  # type: ignore[arg-type]
    checkout_rate = float(results[most]["checkout"]["per_second"])  # type: ignore[arg-type]
    ratio = checkout_rate / bare_rate if bare_rate else 0.0
    print(
        f"checkout at {most} clients: {ratio:.2f} x a bare PaymentIntent create "
        f"(target {TARGET_RATIO}: {'met' if ratio >= TARGET_RATIO else 'NOT met'}); "
        f"load average {load[0]:.2f}, DATABASE_CONN_MAX_AGE={conn_max_age}"
    )


if __name__ == "__main__":
    main()
