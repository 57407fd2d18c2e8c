#!/usr/bin/env python3
"""The orders list, its search and the order page with a million orders: p50/p95 per query.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_million_bench \\
        .venv/bin/python bench/orders_at_scale.py                 # seeds 1,000,000 orders first
    DATABASE_URL=... .venv/bin/python bench/orders_at_scale.py --reuse --repeat 50

The database is migrated and filled with `shopkeeper seed --orders` up to `--orders` (with
`--reuse`, whatever it already holds is kept when it has at least that many). Each query is then
asked `--repeat` times (after two untimed warm-ups) through Django's test client in this
process (its median CPU time is printed too: on a loaded machine the wall time is mostly
waiting for a core), signed in as the owner (who also sees the approval queue on every list
page): the JSON API (`GET /api/admin/orders`, `/api/admin/orders/{number}`) and the back
office's HTML pages (`/admin/orders`, `/admin/orders/{number}`). One line per query: p50, p95,
CPU and PASS/FAIL against `--target-ms` (50). `--plans FILE` writes `EXPLAIN (ANALYZE,
BUFFERS)` of the list's SQL statements for each list query (default
bench/orders_at_scale_plans.txt).

DATABASE_URL is required: a million orders take some 4 GB; give the benchmark its own database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

PAGE = 25


def configure() -> None:
    if not os.environ.get("DATABASE_URL"):
        sys.exit("Set DATABASE_URL to a database of the benchmark's own (see the docstring).")
    os.environ["DJANGO_SETTINGS_MODULE"] = "shopkeeper.settings"
    os.environ.setdefault("SHOPKEEPER_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]


def fill(orders: int, reuse: bool) -> int:
    from django.core.management import call_command

    from shopkeeper.orders.models import Order

    call_command("migrate", verbosity=0)
    have = Order.objects.count()
    if reuse and have >= orders:
        print(f"reusing {have} orders", flush=True)
        return have
    started = time.monotonic()
    call_command("seed", orders=max(orders - have, 1) if reuse else orders)
    print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
    return Order.objects.count()


def cursor_at(offset: int, **filters: Any) -> str:
    """The cursor that the page after the first `offset` orders (newest first) is asked with."""
    from shopkeeper.orders.models import Order
    from shopkeeper.orders_view.selectors import encode_cursor

    rows = Order.objects.filter(**filters).order_by("-created_at", "-id")
    offset = max(1, min(offset, rows.count() - PAGE))  # a small database: as deep as it goes
    return encode_cursor(rows[offset - 1 : offset].get())


def samples() -> dict[str, str]:
    """Real values to search for, taken from the data: a number, a customer, their name."""
    from django.db.models import Count

    from shopkeeper.orders.models import Order

    middle = Order.objects.order_by("id")[Order.objects.count() // 2]
    regular = (
        Order.objects.values("email")
        .annotate(n=Count("id"))
        .filter(n__gte=3, n__lte=20)
        .order_by("email")
        .first()
    )
    email = regular["email"] if regular else middle.email
    local = email.split("@")[0]
    part = max(local.replace("_", ".").split("."), key=len)[:8]
    return {
        "number": middle.number,
        "email": email,
        "email_part": part,
        "name": middle.shipping_address.get("name", "Ada Lovelace"),
        "name_part": middle.shipping_address.get("name", "Lovelace").split()[-1],
    }


def list_queries(total: int) -> list[tuple[str, dict[str, Any]]]:
    from shopkeeper.orders.states import OrderStatus
    from shopkeeper.payments.states import PaymentStatus

    found = samples()
    last = max(total - PAGE, 1)
    queries: list[tuple[str, dict[str, Any]]] = [("first page", {})]
    for depth in (2, 100, 10_000):
        if depth * PAGE < total:
            queries.append((f"keyset page {depth}", {"cursor": cursor_at((depth - 1) * PAGE)}))
    queries.append(("keyset last page", {"cursor": cursor_at(last)}))
    queries += [(f"status={s}", {"status": s.value}) for s in OrderStatus]
    queries += [(f"payment_status={s}", {"payment_status": s.value}) for s in PaymentStatus]
    combos = (
        ("processing", "paid"),
        ("processing", "authorized"),
        ("processing", "partially_refunded"),
        ("pending", "failed"),
        ("cancelled", "voided"),
        ("pending", "paid"),
    )
    queries += [
        (f"status={s}&payment_status={p}", {"status": s, "payment_status": p}) for s, p in combos
    ]
    queries += [
        ("needs_attention=true", {"needs_attention": "true"}),
        ("needs_attention=false", {"needs_attention": "false"}),
        ("needs_attention+status=processing", {"needs_attention": "true", "status": "processing"}),
        (
            "status=processing keyset page 1000",
            {"status": "processing", "cursor": cursor_at(999 * PAGE, status="processing")},
        ),
        (
            "payment_status=refunded keyset page 400",
            {
                "payment_status": "refunded",
                "cursor": cursor_at(399 * PAGE, payment_status="refunded"),
            },
        ),
        ("q=whole number", {"q": found["number"]}),
        ("q=whole number, lower case", {"q": found["number"].lower()}),
        ("q=part of number", {"q": found["number"][-5:]}),
        ("q=whole e-mail", {"q": found["email"]}),
        (f"q=part of e-mail ({found['email_part']})", {"q": found["email_part"]}),
        (f"q=customer name ({found['name']})", {"q": found["name"]}),
        (f"q=part of name ({found['name_part']})", {"q": found["name_part"]}),
        ("q=gmail (very common)", {"q": "gmail"}),
        ("q=nothing matches", {"q": "zzqqxx"}),
        ("q=e-mail + status", {"q": found["email"], "status": "processing"}),
    ]
    return queries


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, float]:
    """p50 and p95 of the wall time, and the median CPU time of this process (Django, the
    template engine; not the database's), which a loaded machine inflates far less."""
    for _ in range(2):
        call()
    times, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, statistics.median(cpu)


def get(client: Any, url: str) -> Callable[[], Any]:
    def call() -> Any:
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code} {response.content[:300]!r}")
        return response

    return call


def list_statements(client: Any, url: str) -> list[str]:
    """The SQL the orders list ran for this request (the search's or the flags' look-up of
    ids first, when there is one), without the session's and the user's."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        get(client, url)()
    return [
        q["sql"]
        for q in captured.captured_queries
        if 'FROM "orders_order"' in q["sql"] or 'FROM "orders_attention"' in q["sql"]
    ]


def explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the orders already there")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--target-ms", type=float, default=50.0)
    parser.add_argument("--plans", default=str(ROOT / "bench" / "orders_at_scale_plans.txt"))
    parser.add_argument("--only", default="", help="only queries whose label contains this")
    args = parser.parse_args()
    configure()
    total = fill(args.orders, args.reuse)

    from django.test import Client

    from shopkeeper.accounts.models import User
    from shopkeeper.demo.data import OWNER_EMAIL
    from shopkeeper.orders.models import Order

    client = Client()
    client.force_login(User.objects.get(email=OWNER_EMAIL))
    load = os.getloadavg()
    print(f"{total} orders; repeat {args.repeat}; load average {load[0]:.2f} {load[1]:.2f}")
    failed, plans = 0, []
    rows: list[tuple[str, str]] = []
    for label, params in list_queries(total):
        query = urlencode(params)
        rows.append((f"API  {label}", f"/api/admin/orders?{query}"))
        rows.append((f"HTML {label}", f"/admin/orders?{query}"))
        if not args.only or args.only in label:
            for sql in list_statements(client, f"/api/admin/orders?{query}"):
                plans.append(f"## {label}\n\n{sql}\n\n{explain(sql)}\n")
    number = samples()["number"]
    refunded = Order.objects.filter(payment_status="partially_refunded").order_by("-id").first()
    for order in filter(None, (number, refunded.number if refunded else None)):
        rows.append((f"API  order page {order}", f"/api/admin/orders/{order}"))
        rows.append((f"HTML order page {order}", f"/admin/orders/{order}"))
        rows.append((f"HTML order panel {order}", f"/admin/orders/{order}/panel"))
    for label, url in rows:
        if args.only and args.only not in label:
            continue
        p50, p95, cpu = timed(get(client, url), args.repeat)
        verdict = "PASS" if p95 <= args.target_ms else "FAIL"
        failed += verdict == "FAIL"
        print(
            f"{label:<58} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  cpu {cpu:5.1f} ms  {verdict}",
            flush=True,
        )
    Path(args.plans).write_text("\n".join(plans))
    load = os.getloadavg()
    print(f"plans: {args.plans}; load average {load[0]:.2f} {load[1]:.2f}")
    print(f"{len(rows) - failed if not args.only else '-'} passed, {failed} failed")


if __name__ == "__main__":
    main()
