#!/usr/bin/env python3
"""Refund latency end to end against a real localstripe: p50 / p95 of one partial refund.

    .venv/bin/python bench/refund_latency.py               # an embedded PostgreSQL in a temp dir
    .venv/bin/python bench/refund_latency.py --via api     # through POST .../refunds
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench \
        .venv/bin/python bench/refund_latency.py

What is timed is one `request_refund` (or one API request): lock the order and reserve the
refund (transaction 1), call localstripe through the Stripe SDK, record the ledger row, payment
status and audit rows (transaction 2). Orders are placed and paid beforehand, untimed. With
DATABASE_URL the tables are migrated into that database: give it one of its own.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_localstripe() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper.demo.localstripe_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    from shopkeeper.demo.localstripe_server import wait_until_up

    wait_until_up(url)
    return process, url


def bench_database() -> str:
    """DATABASE_URL, or else an embedded PostgreSQL (fsync off) in a temporary directory of its
    own, stopped and removed at exit."""
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    from shopkeeper.demo.embedded_postgres import database_url, ensure_database, start

    data = Path(tempfile.mkdtemp(prefix="shopkeeper-bench-"))
    server = start(data / "postgres", fast=True)
    atexit.register(shutil.rmtree, data, ignore_errors=True)
    atexit.register(server.stop)  # atexit runs last in, first out: stop, then remove
    ensure_database(server, "bench")
    return database_url(server, "bench")


def configure(tmp: str, api_base: str) -> None:
    os.environ["DATABASE_URL"] = bench_database()
    os.environ["STRIPE_API_BASE"] = api_base
    os.environ["DJANGO_SETTINGS_MODULE"] = "shopkeeper.settings"
    os.environ["SHOPKEEPER_LOG_LEVEL"] = "WARNING"
    os.environ["SHOPKEEPER_DATA_DIR"] = tmp
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def paid_orders(count: int, gateway: object) -> list[str]:
    from shopkeeper.catalog.models import Product
    from shopkeeper.catalog.services import create_product
    from shopkeeper.checkout.services import BasketItem, place_order
    from shopkeeper.payments.services import apply_intent

    sku = f"BENCH-{int(time.time() * 1000)}"
    if not Product.objects.filter(sku=sku).exists():
        create_product(sku=sku, name="Bench mug", price="10.00", currency="USD", stock=10**6)
    address = {"name": "B", "line1": "1 St", "city": "X", "postal_code": "1", "country": "US"}
    numbers = []
    for _ in range(count):
        placed = place_order(
            email="bench@example.com",
            items=[BasketItem(sku, 5)],
            shipping_address=address,
            gateway=gateway,  # type: ignore[arg-type]
        )
        intent = gateway.confirm_payment_intent(  # type: ignore[attr-defined]
            placed.payment.intent_id,
            payment_method="pm_card_visa",
            idempotency_key=f"bench-confirm-{placed.order.number}",
        )
        apply_intent(intent, source="bench")
        numbers.append(placed.order.number)
    return numbers


def staff() -> tuple[object, str]:
    from shopkeeper.accounts.models import ApiToken, User, hash_token

    email = f"bench-{int(time.time() * 1000)}@shop.example"
    user = User.objects.create_user(email, None, role="manager")
    raw = ApiToken.new_raw_token()
    ApiToken.objects.create(user=user, key_hash=hash_token(raw), name="bench")
    return user, raw


def run(refunds: int, per_order: int, via: str, warmup: int) -> dict[str, object]:
    from django.db import connection
    from django.test import Client

    from shopkeeper.payments.provider import gateway_from_settings
    from shopkeeper.refunds.services import request_refund

    gateway = gateway_from_settings()
    user, token = staff()
    orders = paid_orders(-(-(refunds + warmup) // per_order), gateway)
    client = Client()
    timings: list[float] = []
    for i in range(refunds + warmup):
        number = orders[i // per_order]
        started = time.perf_counter()
        if via == "api":
            response = client.post(
                f"/api/admin/orders/{number}/refunds",
                json.dumps({"amount": "1.00", "reason": "requested_by_customer"}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                HTTP_IDEMPOTENCY_KEY=f"bench-{number}-{i}",
            )
            status = response.json()["refund"]["status"]
        else:
            status = request_refund(
                order_number=number, actor=user, amount="1.00", reason="requested_by_customer"
            ).status
        elapsed = time.perf_counter() - started
        if status != "succeeded":
            raise SystemExit(f"refund {i} ended {status}")
        if i >= warmup:
            timings.append(elapsed * 1000)
    ordered = sorted(timings)
    return {
        "via": via,
        "database": connection.vendor,
        "refunds": len(timings),
        "refunds_per_order": per_order,
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "max_ms": round(ordered[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refunds", type=int, default=200, help="timed refunds (200)")
    parser.add_argument("--per-order", type=int, default=5, help="partial refunds per order (5)")
    parser.add_argument("--via", choices=("service", "api"), default="service")
    parser.add_argument("--warmup", type=int, default=10, help="untimed refunds first (10)")
    args = parser.parse_args()
    if not 1 <= args.per_order <= 50:
        parser.error("--per-order must be 1..50 (an order of 55.00 USD, 1.00 per refund)")
    sys.path.insert(0, str(ROOT / "src"))
    process, url = start_localstripe()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            configure(tmp, url)
            result = run(args.refunds, args.per_order, args.via, args.warmup)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(json.dumps(result))
    print(
        f"refund latency via {result['via']} on {result['database']}: "
        f"p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms ({result['refunds']} refunds)"
    )


if __name__ == "__main__":
    main()
