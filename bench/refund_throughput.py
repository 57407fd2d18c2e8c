#!/usr/bin/env python3
"""Refund throughput: Shopkeeper's API refund against a bare Stripe refund, side by side.

    .venv/bin/python bench/refund_throughput.py                  # an embedded PostgreSQL
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench \
        .venv/bin/python bench/refund_throughput.py
    .venv/bin/python bench/refund_throughput.py --rounds 3 --refunds 60

One localstripe (started here, in-memory store) serves both contenders. In each round, for 1 and
for 8 clients (threads, each with its own keep-alive connection and its own orders), it runs:

  bare        one `stripe.Refund.create` (stripe SDK) of a confirmed PaymentIntent, with an
              idempotency key: the ceiling;
  shopkeeper  `POST /api/admin/orders/{number}/refunds` with an Idempotency-Key and a bearer
              token, through a real `shopkeeper serve` (gunicorn, 2 workers x 4 threads);
  --contender NAME=URL (optional, repeatable): a POST of {"amount": "1.00"} with an
              Idempotency-Key to URL, e.g. another shop's refund endpoint.

It prints refunds/s, p50 and p95 for each, then the ratios against the bare call measured in the
same run: the p50 Shopkeeper adds to a bare refund with 1 client (target <= 10 ms) and its
8-client refunds/s over the bare call's (target >= 0.3; EverShop 2.2.1 in issue 9: ~0.1), and
the CPU the server's processes spent per refund (psutil; the issue measured 75-88 ms).
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
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refund_latency import (
    ROOT,
    configure,
    free_port,
    paid_orders,
    staff,
    start_localstripe,
)

AMOUNT = "1.00"
PER_ORDER = 25  # 1.00 refunds of a 55.00 order
EVERSHOP_RATIO = 0.1  # issue 9: EverShop 2.2.1, 33-40 refunds/s against a bare 285-390/s


@dataclass
class Phase:
    name: str
    clients: int
    seconds: float
    latencies_ms: list[float]
    cpu_seconds: float | None = None  # the server's processes (gunicorn), when measured

    @property
    def rate(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)


Calls = list[list[Callable[[], None]]]  # per client, its calls in order


def run_clients(name: str, per_client: Calls) -> Phase:
    """Every client makes its calls one after the other, all clients at once."""
    clients = len(per_client)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(clients + 1)

    def client(i: int) -> None:
        barrier.wait()
        try:
            for call in per_client[i]:
                started = time.perf_counter()
                call()
                latencies[i].append((time.perf_counter() - started) * 1000)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{name}: {errors[0]!r}")
    return Phase(name, clients, seconds, [ms for client in latencies for ms in client])


class Http:
    """One keep-alive connection per client thread."""

    def __init__(self, url: str) -> None:
        self.url = urllib.parse.urlsplit(url)
        self.local = threading.local()

    def post(self, path: str, body: dict[str, object], headers: dict[str, str]) -> dict:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=60)
            self.local.connection = connection
        connection.request(
            "POST", path, json.dumps(body), {"Content-Type": "application/json", **headers}
        )
        response = connection.getresponse()
        data = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{path}: {response.status} {data[:300]!r}")
        return json.loads(data)


def start_server(env: dict[str, str], workers: int, threads: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "shopkeeper", "serve", "--host", "127.0.0.1"]
    options = ["--port", str(port), "--workers", str(workers), "--threads", str(threads)]
    process = subprocess.Popen(
        [*command, *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/")
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("shopkeeper serve did not come up")


def bare_work(api_base: str, clients: int, each: int) -> Calls:
    """`each` refund calls per client straight to localstripe through the stripe SDK, each
    client on PaymentIntents of its own."""
    import stripe

    client = stripe.StripeClient("sk_test_bench", base_addresses={"api": api_base})
    work: Calls = []
    for c in range(clients):
        intents = []
        for _ in range(-(-each // PER_ORDER)):
            intent = client.payment_intents.create(
                params={"amount": 5500, "currency": "usd", "payment_method": "pm_card_visa"}
            )
            intents.append(client.payment_intents.confirm(intent.id).id)
        calls: list[Callable[[], None]] = []
        for i in range(each):

            def call(
                intent_id: str = intents[i // PER_ORDER], key: str = f"b-{time.time()}-{c}-{i}"
            ):
                client.refunds.create(
                    params={"payment_intent": intent_id, "amount": 100},
                    options={"idempotency_key": key},
                )

            calls.append(call)
        work.append(calls)
    return work


def shop_work(server: Http, token: str, gateway: object, clients: int, each: int) -> Calls:
    """`each` API refunds per client, each client on orders of its own."""
    work: Calls = []
    for c in range(clients):
        numbers = paid_orders(-(-each // PER_ORDER), gateway)
        calls: list[Callable[[], None]] = []
        for i in range(each):

            def call(number: str = numbers[i // PER_ORDER], key: str = f"s-{time.time()}-{c}-{i}"):
                body = server.post(
                    f"/api/admin/orders/{number}/refunds",
                    {"amount": AMOUNT, "reason": "requested_by_customer"},
                    {"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )
                if body["refund"]["status"] != "succeeded":
                    raise RuntimeError(f"refund ended {body['refund']['status']}")

            calls.append(call)
        work.append(calls)
    return work


def contender_work(url: str, clients: int, each: int) -> Calls:
    target = Http(url)
    path = urllib.parse.urlsplit(url).path or "/"
    stamp = time.time()
    return [
        [
            lambda c=c, i=i: target.post(
                path, {"amount": AMOUNT}, {"Idempotency-Key": f"{stamp}-{c}-{i}"}
            )
            for i in range(each)
        ]
        for c in range(clients)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the contenders")
    parser.add_argument("--refunds", type=int, default=80, help="refunds per phase (80)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--contender", action="append", default=[], metavar="NAME=URL")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    localstripe, api_base = start_localstripe()
    server = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            configure(tmp, api_base)
            from shopkeeper.payments.provider import gateway_from_settings

            gateway = gateway_from_settings()
            _, token = staff()
            # Not paced, like the bare contender: at its test-mode default (20/s) the shared
            # Stripe limiter alone caps refunds near 16/s (bench/stripe_limiter.py measures it).
            env = {
                "STRIPE_MAX_REQUESTS_PER_SECOND": "0",
                **os.environ,
                "SHOPKEEPER_LOG_LEVEL": "WARNING",
            }
            server, url = start_server(env, args.workers, args.threads)
            shop = Http(url)
            contenders = dict(item.split("=", 1) for item in args.contender)
            phases: list[Phase] = []
            for _ in range(args.rounds):
                for clients in (1, 8):
                    each = max(1, args.refunds // clients)
                    work = {
                        "bare": bare_work(api_base, clients, each),
                        "shopkeeper": shop_work(shop, token, gateway, clients, each),
                        **{n: contender_work(u, clients, each) for n, u in contenders.items()},
                    }
                    for name, calls in work.items():  # set up first, then run back to back
                        before = server_cpu(server) if name == "shopkeeper" else None
                        phase = run_clients(name, calls)
                        if before is not None:
                            phase.cpu_seconds = server_cpu(server) - before
                        phases.append(phase)
                        print(summary(phases[-1]), flush=True)
            report(phases, contenders)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        localstripe.terminate()
        localstripe.wait(timeout=10)


def server_cpu(server: subprocess.Popen) -> float:
    """CPU seconds used so far by `shopkeeper serve` and its workers (user + system)."""
    import psutil

    root = psutil.Process(server.pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        times = process.cpu_times()
        total += times.user + times.system
    return total


def summary(phase: Phase) -> str:
    cpu = ""
    if phase.cpu_seconds is not None:
        cpu = f"  server CPU {phase.cpu_seconds * 1000 / len(phase.latencies_ms):.1f} ms/refund"
    return (
        f"{phase.name:<12} {phase.clients} client{'s' if phase.clients > 1 else ' '}  "
        f"{phase.rate:7.1f} refunds/s  p50 {phase.p50:7.1f} ms  "
        f"p95 {phase.percentile(0.95):7.1f} ms  ({len(phase.latencies_ms)} refunds){cpu}"
    )


def report(phases: list[Phase], contenders: dict[str, str]) -> None:
    def pooled(name: str, clients: int) -> Phase:
        chosen = [p for p in phases if p.name == name and p.clients == clients]
        latencies = [ms for p in chosen for ms in p.latencies_ms]
        cpus = [p.cpu_seconds for p in chosen if p.cpu_seconds is not None]
        cpu = sum(cpus) if cpus else None
        return Phase(name, clients, sum(p.seconds for p in chosen), latencies, cpu)

    print("\nall rounds pooled:")
    for clients in (1, 8):
        for name in ("bare", "shopkeeper", *contenders):
            print("  " + summary(pooled(name, clients)))
    bare1, shop1 = pooled("bare", 1), pooled("shopkeeper", 1)
    bare8, shop8 = pooled("bare", 8), pooled("shopkeeper", 8)
    added = shop1.p50 - bare1.p50
    ratio = shop8.rate / bare8.rate
    result = {
        "p50_added_ms_1_client": round(added, 1),
        "ratio_8_clients": round(ratio, 3),
        "shopkeeper_8_rate": round(shop8.rate, 1),
        "bare_8_rate": round(bare8.rate, 1),
        "server_cpu_ms_per_refund": round(
            (shop1.cpu_seconds or 0) * 1000 / max(1, len(shop1.latencies_ms)), 1
        ),
    }
    print(json.dumps(result))
    print(
        f"p50 added over a bare refund, 1 client: {added:.1f} ms (target <= 10 ms: "
        f"{'met' if added <= 10 else 'NOT met'})"
    )
    print(
        f"8 clients: {shop8.rate:.1f} refunds/s = {ratio:.2f} x bare {bare8.rate:.1f}/s (target "
        f">= 0.3: {'met' if ratio >= 0.3 else 'NOT met'}; EverShop in issue 9: "
        f"~{EVERSHOP_RATIO} x bare, so {ratio / EVERSHOP_RATIO:.1f} x EverShop's ratio)"
    )
    for name in contenders:
        c8 = pooled(name, 8)
        print(f"{name}, 8 clients: {c8.rate:.1f} refunds/s = {c8.rate / bare8.rate:.2f} x bare")


if __name__ == "__main__":
    main()
