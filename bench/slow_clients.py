#!/usr/bin/env python3
"""Slow clients: ordinary requests' p50 / p95 while 200 connections hold half a request for 60 s.

    .venv/bin/python bench/slow_clients.py                    # 200 slow clients, 60 s
    .venv/bin/python bench/slow_clients.py --slow 500 --seconds 30 --workers 2 --threads 4
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench .venv/bin/python bench/slow_clients.py

A real `shopkeeper serve` on loopback (the demo catalog seeded, no orders). The slow clients
connect first, each sending a request line and one header and then nothing; while they are
held, ordinary GET / (the storefront, which reads the catalog) are made one after another on new
connections, each with a 5 s timeout. A slow connection the server closes (its header timeout)
is opened again at once, as an attacker would, so that all of them are held the whole time.
Target: p95 under 1 s. With DATABASE_URL the tables are
migrated into that database: give it one of its own.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from refund_latency import bench_database, free_port  # noqa: E402
from tests.slow_clients import HalfRequests, ordinary_request, ordinary_requests_for  # noqa: E402

TARGET_SECONDS = 1.0


def start_server(tmp: str, workers: int, threads: int) -> tuple[subprocess.Popen[bytes], int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHOPKEEPER_"))}
    env["DATABASE_URL"] = bench_database()
    env.update(SHOPKEEPER_DATA_DIR=tmp, SHOPKEEPER_LOG_LEVEL="WARNING")
    shopkeeper = [sys.executable, "-m", "shopkeeper"]
    subprocess.run([*shopkeeper, "migrate", "-v0"], env=env, check=True)
    subprocess.run([*shopkeeper, "seed", "--no-orders"], env=env, check=True, capture_output=True)
    port = free_port()
    serve = [*shopkeeper, "serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(
        [*serve, "--threads", str(threads)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while ordinary_request(port, timeout=1)[0] != 200:
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise SystemExit("the server did not come up")
        time.sleep(0.2)
    return process, port


def keep_open(slow: HalfRequests, stop: threading.Event) -> None:
    """Keep all the slow connections open: reopen each one the server closes (its timeout)."""
    while not stop.wait(0.5):
        slow.refill()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=200, help="half-request connections held")
    parser.add_argument("--seconds", type=float, default=60, help="how long they are held")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        process, port = start_server(tmp, args.workers, args.threads)
        try:
            with HalfRequests(port, args.slow) as slow:
                stop = threading.Event()
                keeper = threading.Thread(target=keep_open, args=(slow, stop), daemon=True)
                keeper.start()
                answers = ordinary_requests_for(port, seconds=args.seconds)
                stop.set()
                keeper.join()
                held = slow.still_open()
        finally:
            process.terminate()
            process.wait(timeout=30)
    timed = zip(answers.seconds, answers.statuses, strict=True)
    answered = [seconds for seconds, status in timed if status == 200]
    result = {
        "slow_clients": args.slow,
        "held_seconds": args.seconds,
        "still_open_at_end": held,
        "reopened_after_server_timeout": slow.reopened,
        "requests": len(answers.statuses),
        "failed": len(answers.failures),
        "p50_ms": round(1000 * statistics.median(answered), 1) if answered else None,
        "p95_ms": round(1000 * percentile(answered, 0.95), 1) if answered else None,
        "max_ms": round(1000 * max(answered), 1) if answered else None,
    }
    print(json.dumps(result))
    if answered:
        ratio = percentile(answered, 0.95) / TARGET_SECONDS
        print(
            f"{args.slow} slow clients held {args.seconds:.0f} s: {len(answered)} of "
            f"{len(answers.statuses)} ordinary requests answered, p50 {result['p50_ms']} ms, "
            f"p95 {result['p95_ms']} ms = {ratio:.3f} x the 1 s target"
        )
    else:
        print(f"{args.slow} slow clients: no ordinary request was answered")


if __name__ == "__main__":
    main()
