#!/usr/bin/env python3
"""Signed Stripe webhooks through a real server: p50 / p95 of the POST and events/s, new and
duplicate, with 1 and 8 clients; pgbench `-N` on the same database in the same run (the ceiling).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench \
        .venv/bin/python bench/webhook_throughput.py
    .venv/bin/python bench/webhook_throughput.py --seconds 10 --workers 2 --threads 4

A real `shopkeeper serve` on loopback (no worker: what is timed is the POST, which stores the
event and defers its job; the jobs wait in the queue). Each client is a process of its own with
one keep-alive connection, sending one request after another for `--seconds`. "new": every
event a new id (a row and a job each); "duplicate": one event already stored, sent again and
again (Stripe's redeliveries; one statement each). pgbench runs its simple-update script (`-N`)
with as many clients, before and after the webhooks; the ratio is against their mean. Targets:
p95 under 50 ms; a duplicate at 8 clients at least 0.3 x pgbench's tps. pgbench's tables
(`pgbench_*`) are created in the database, and the server's migrations run there: give the
benchmark a database of its own.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refund_latency import bench_database, free_port  # noqa: E402

SECRET = "whsec_bench_webhooks"
P95_TARGET_MS = 50.0
RATIO_TARGET = 0.3


def event_body(event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "api_version": "2024-06-20",
            "type": "payment_intent.succeeded",
            "created": int(time.time()),
            "livemode": False,
            "data": {
                "object": {
                    "id": f"pi_{event_id}",
                    "object": "payment_intent",
                    "status": "succeeded",
                    "amount": 2600,
                    "currency": "usd",
                    "capture_method": "automatic",
                    "metadata": {"order_number": "SK-BENCH"},
                }
            },
        }
    ).encode()


def signature(body: bytes) -> str:
    stamp = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


def client(args: tuple[int, str, int, float, str]) -> list[float]:
    """One Stripe-like sender: POSTs for `seconds`; the latency of each (seconds)."""
    port, kind, index, seconds, run = args
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies: list[float] = []
    duplicate = event_body(f"evt_bench_duplicate_{run}")
    duplicate_signature = signature(duplicate)
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        if kind == "duplicate":
            body, signed = duplicate, duplicate_signature
        else:
            body = event_body(f"evt_bench_{run}_{index}_{n}")
            signed = signature(body)
        n += 1
        started = time.perf_counter()
        connection.request(
            "POST",
            "/webhooks/stripe",
            body=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": signed},
        )
        response = connection.getresponse()
        answer = response.read()
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise SystemExit(f"webhook answered {response.status}: {answer[:200]!r}")
        expected = b'"duplicate"' if kind == "duplicate" else b'"received"'
        if expected not in answer:
            raise SystemExit(f"webhook answered {answer[:200]!r}, expected {expected!r}")
    connection.close()
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def webhooks(port: int, kind: str, clients: int, seconds: float, run: str) -> dict[str, object]:
    if kind == "duplicate":  # stored once, untimed
        body = event_body(f"evt_bench_duplicate_{run}")
        seed = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        seed.request(
            "POST",
            "/webhooks/stripe",
            body=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature(body)},
        )
        assert seed.getresponse().status == 200
        seed.close()
    with multiprocessing.Pool(clients) as pool:
        started = time.monotonic()
        results = pool.map(client, [(port, kind, i, seconds, run) for i in range(clients)])
        elapsed = time.monotonic() - started
    latencies = [latency for result in results for latency in result]
    return {
        "kind": kind,
        "clients": clients,
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
    }


def pgbench_env(database_url: str) -> tuple[list[str], dict[str, str]]:
    """pgbench's connection options for DATABASE_URL (a socket directory as the host too)."""
    parts = urllib.parse.urlsplit(database_url)
    host = urllib.parse.unquote(parts.hostname or "") if parts.hostname else ""
    if "%2F" in parts.netloc or "%2f" in parts.netloc:
        host = urllib.parse.unquote(parts.netloc.split("@")[-1].split(":")[0])
    options = ["-U", parts.username or "postgres"]
    if host:
        options += ["-h", host]
    if parts.port:
        options += ["-p", str(parts.port)]
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = urllib.parse.unquote(parts.password)
    return [*options, parts.path.lstrip("/")], env


def pgbench(database_url: str, clients: int, seconds: float, initialise: bool) -> float:
    binary = shutil.which("pgbench") or "/usr/lib/postgresql/15/bin/pgbench"
    options, env = pgbench_env(database_url)
    connection, database = options[:-1], options[-1]
    if initialise:
        subprocess.run(
            [binary, "-i", "-s", "1", "-q", *connection, database],
            env=env,
            check=True,
            capture_output=True,
        )
    threads = min(clients, os.cpu_count() or 1)
    out = subprocess.run(
        [
            binary,
            "-N",
            "-c",
            str(clients),
            "-j",
            str(threads),
            "-T",
            str(int(seconds)),
            *connection,
            database,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", out)
    if match is None:
        raise SystemExit(f"pgbench printed no tps:\n{out}")
    return float(match.group(1))


def start_server(
    database_url: str, tmp: str, workers: int, threads: int
) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHOPKEEPER_"))}
    env.update(
        DATABASE_URL=database_url,
        STRIPE_WEBHOOK_SECRET=SECRET,
        SHOPKEEPER_DATA_DIR=tmp,
        SHOPKEEPER_LOG_LEVEL="WARNING",
        SHOPKEEPER_DEBUG="0",
    )
    env.setdefault("DATABASE_CONN_MAX_AGE", "60")
    shopkeeper = [sys.executable, "-m", "shopkeeper"]
    subprocess.run([*shopkeeper, "migrate", "-v0"], env=env, check=True)
    port = free_port()
    process = subprocess.Popen(
        [
            *shopkeeper,
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            probe.request("GET", "/webhooks/stripe")
            if probe.getresponse().status == 405:
                return process, port
        except OSError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("the server did not come up")
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10, help="each measurement (10)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per process (4)")
    args = parser.parse_args()
    database_url = bench_database()
    run = str(int(time.time()))
    with tempfile.TemporaryDirectory(prefix="shopkeeper-bench-") as tmp:
        server, port = start_server(database_url, tmp, args.workers, args.threads)
        try:
            before = pgbench(database_url, 8, args.seconds, initialise=True)
            rows = [
                webhooks(port, kind, clients, args.seconds, run)
                for clients in (1, 8)
                for kind in ("new", "duplicate")
            ]
            after = pgbench(database_url, 8, args.seconds, initialise=False)
        finally:
            server.terminate()
            server.wait(timeout=30)
    ceiling = (before + after) / 2
    for row in rows:
        row["ratio_to_pgbench"] = round(float(row["per_second"]) / ceiling, 3)  # type: ignore[arg-type]
        print(json.dumps(row))
    print(json.dumps({"pgbench_N_tps_8_clients": [round(before), round(after)]}))
    duplicate_8 = next(r for r in rows if r["kind"] == "duplicate" and r["clients"] == 8)
    worst_p95 = max(float(r["p95_ms"]) for r in rows)  # type: ignore[arg-type]
    print(
        f"webhooks: worst p95 {worst_p95:.1f} ms (target < {P95_TARGET_MS:.0f} ms: "
        f"{'met' if worst_p95 < P95_TARGET_MS else 'NOT met'}); duplicate at 8 clients "
        f"{duplicate_8['per_second']}/s = {duplicate_8['ratio_to_pgbench']} x pgbench -N "
        f"{ceiling:.0f} tps (target >= {RATIO_TARGET}: "
        f"{'met' if float(duplicate_8['ratio_to_pgbench']) >= RATIO_TARGET else 'NOT met'})"  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
