#!/usr/bin/env python3
"""Reconciliation throughput against a real localstripe: how long a whole-account run takes.

    .venv/bin/python bench/reconcile_throughput.py                 # embedded PostgreSQL
    .venv/bin/python bench/reconcile_throughput.py --orders 500 --dashboard 0.1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench \\
        .venv/bin/python bench/reconcile_throughput.py

Orders are placed and paid at localstripe first (untimed); a share of them then gets a refund
made directly at localstripe, as from the Stripe Dashboard. Timed: the way before issue 9 (one
read per PaymentIntent, the ceiling it is compared with), then reconcile over Stripe's lists: a
report, --fix recording those refunds, --fix again finding nothing, and --since 24h. The Stripe
requests each run makes are counted at the SDK's HTTP client, and a bare list request at the
same localstripe is timed. The closing lines give the ratios and extrapolate to 1,000,000
PaymentIntents at real Stripe's pace.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from refund_latency import ROOT, configure, paid_orders, start_localstripe


def counted_gateway(url: str) -> tuple[Any, list[str]]:
    """The real gateway, with every HTTP request it sends to Stripe noted."""
    import stripe
    from shopkeeper.payments.provider import gateway_from_settings

    requests: list[str] = []
    original = stripe.RequestsClient.request

    def request(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        requests.append(f"{method.upper()} {url.split('?')[0]}")
        return original(self, method, url, *args, **kwargs)

    stripe.RequestsClient.request = request  # type: ignore[method-assign]
    gateway = gateway_from_settings()
    return gateway, requests


@contextmanager
def counted_queries() -> Iterator[list[str]]:
    """Every SQL statement run meanwhile (counted, not kept: runs make tens of thousands)."""
    from django.db import connection

    seen: list[str] = []

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append("")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        yield seen


def timed_run(gateway: Any, requests: list[str], **scope: Any) -> dict[str, object]:
    """One reconcile, unpaced (localstripe has no rate limit): its time is ours and
    localstripe's; the paced time at real Stripe is its requests over the pace."""
    from shopkeeper.reconciliation.services import reconcile

    before = len(requests)
    started = time.perf_counter()
    with counted_queries() as queries:
        report = reconcile(gateway=gateway, requests_per_second=0, **scope)
    elapsed = time.perf_counter() - started
    sent = len(requests) - before
    return {
        "scope": " ".join(f"--{k}" if v is True else f"--{k} {v}" for k, v in scope.items()),
        "checked": report.checked,
        "differences": len(report.findings),
        "fixed": len(report.fixed),
        "exit_code": report.exit_code,
        "seconds": round(elapsed, 3),
        "ms_per_payment_intent": round(elapsed * 1000 / max(report.checked, 1), 3),
        "stripe_requests": sent,
        "requests_per_1000": round(sent * 1000 / max(report.checked, 1), 1),
        "sql_queries": len(queries),
    }


def one_read_each(gateway: Any, requests: list[str], intent_ids: list[str]) -> dict[str, object]:
    """The way before issue 9: Stripe asked about each PaymentIntent on its own (its charges,
    refunds and disputes), our books read per payment; the same comparison."""
    from datetime import timedelta

    from django.utils import timezone

    from shopkeeper.reconciliation.compare import compare_payment
    from shopkeeper.reconciliation.listing import Pacer, facts_of, paced
    from shopkeeper.reconciliation.selectors import ledger_facts

    before, pacer = len(requests), Pacer(0)
    started = time.perf_counter()
    after = timezone.now() - timedelta(minutes=5)
    with counted_queries() as queries:
        listed = [i for page in paced(gateway.list_payment_intents(), pacer) for i in page]
        found = 0
        for intent in listed:
            ours = ledger_facts(intent.id, in_flight_after=after)
            if ours is None:
                continue
            took_money = intent.status == "succeeded"  # as before: reads only where they matter
            stripe = facts_of(
                intent,
                charges=gateway.list_charges(intent.id) if took_money else [],
                refunds=gateway.list_refunds(intent.id) if took_money else [],
                disputes=gateway.list_disputes(intent.id) if took_money else [],
            )
            found += len(compare_payment(ours, stripe))
    elapsed = time.perf_counter() - started
    sent = len(requests) - before
    return {
        "checked": len(intent_ids),
        "differences": found,
        "seconds": round(elapsed, 3),
        "ms_per_payment_intent": round(elapsed * 1000 / max(len(intent_ids), 1), 3),
        "stripe_requests": sent,
        "requests_per_1000": round(sent * 1000 / max(len(intent_ids), 1), 1),
        "sql_queries": len(queries),
    }


def bare_list_page_ms(url: str, repeat: int = 20) -> float:
    """The ceiling: a bare SDK request for a page of 100 PaymentIntents, same localstripe."""
    import stripe

    client = stripe.StripeClient("sk_test_bare", base_addresses={"api": url})
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        client.v1.payment_intents.list(params={"limit": 100})
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def run(orders: int, dashboard: float, url: str) -> dict[str, object]:
    from django.db import connection

    import stripe
    from shopkeeper.payments.models import Payment

    gateway, requests = counted_gateway(url)
    numbers = paid_orders(orders, gateway)
    staff = stripe.StripeClient("sk_test_dashboard", base_addresses={"api": url})
    refunded = numbers[: int(len(numbers) * dashboard)]
    for number in refunded:
        intent_id = Payment.objects.get(order__number=number).intent_id
        staff.v1.refunds.create(params={"payment_intent": intent_id, "amount": 100})
    intent_ids = list(Payment.objects.values_list("intent_id", flat=True))
    before = one_read_each(gateway, requests, intent_ids)
    runs = [
        timed_run(gateway, requests),
        timed_run(gateway, requests, fix=True),
        timed_run(gateway, requests, fix=True),
        timed_run(gateway, requests, since=_hours_ago(24)),
    ]
    return {
        "database": connection.vendor,
        "orders": orders,
        "dashboard_refunds": len(refunded),
        "bare_list_page_ms": bare_list_page_ms(url),
        "one_read_each": before,
        "runs": runs,
    }


def _hours_ago(hours: int) -> Any:
    from datetime import timedelta

    from django.utils import timezone

    return timezone.now() - timedelta(hours=hours)


def extrapolate(timed: dict[str, Any], *, payments: int, pace: float) -> str:
    """A run over `payments` PaymentIntents: the requests grow with them (one per 100 of each
    list), our side with them too; at real Stripe the requests wait for the pace. (Here, the
    time is mostly localstripe's: its list pages cost more the more it holds, real Stripe's
    do not, so this over-states the time "here".)"""
    requests = timed["requests_per_1000"] * payments / 1000
    ours = timed["ms_per_payment_intent"] * payments / 1000
    paced = requests / pace
    return (
        f"{payments:,} PaymentIntents: {requests:,.0f} requests, "
        f"{max(ours, paced) / 60:,.1f} min at {pace:g} requests/s "
        f"({paced / 60:,.1f} min waiting on the pace, {ours / 60:,.1f} min here)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000, help="paid orders (1000)")
    parser.add_argument(
        "--dashboard", type=float, default=0.2, help="share refunded in the Dashboard (0.2)"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    process, url = start_localstripe()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            configure(tmp, url)
            result = run(args.orders, args.dashboard, url)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(json.dumps(result))
    before = result["one_read_each"]
    print(
        f"one read per PaymentIntent (before): {before['checked']} PaymentIntents in "
        f"{before['seconds']} s, {before['stripe_requests']} Stripe requests, "
        f"{before['sql_queries']} SQL queries"
    )
    for timed in result["runs"]:  # type: ignore[attr-defined]
        print(
            f"reconcile {timed['scope']}: {timed['checked']} PaymentIntents in "
            f"{timed['seconds']} s ({timed['ms_per_payment_intent']} ms each, "
            f"{timed['stripe_requests']} Stripe requests = {timed['requests_per_1000']} per "
            f"1,000, {timed['sql_queries']} SQL queries), {timed['differences']} differences, "
            f"{timed['fixed']} fixed, exit {timed['exit_code']}"
        )
    whole = result["runs"][0]  # type: ignore[index]
    ratio = before["stripe_requests"] / max(whole["stripe_requests"], 1)
    bare = whole["stripe_requests"] * result["bare_list_page_ms"] / 1000
    print(
        f"requests: {whole['stripe_requests']} vs {before['stripe_requests']} one per "
        f"PaymentIntent ({ratio:.0f}x fewer); time {whole['seconds']} s vs {before['seconds']} s "
        f"({before['seconds'] / max(whole['seconds'], 1e-9):.1f}x); its requests alone, "
        f"as bare list pages of {result['bare_list_page_ms']} ms: {bare:.2f} s"
    )
    clean = result["runs"][2]  # type: ignore[index]  # books and Stripe agree: the usual night
    print("extrapolated, whole account: " + extrapolate(clean, payments=1_000_000, pace=10))
    print("extrapolated, whole account: " + extrapolate(clean, payments=1_000_000, pace=25))
    print(
        "extrapolated, nightly --since 24h over a day's 10,000 PaymentIntents: "
        + extrapolate(result["runs"][3], payments=10_000, pace=10)  # type: ignore[index]
    )


if __name__ == "__main__":
    main()
