#!/usr/bin/env python3
"""Reconciliation throughput against a real localstripe: how long a whole-account run takes.

    .venv/bin/python bench/reconcile_throughput.py                 # embedded PostgreSQL
    .venv/bin/python bench/reconcile_throughput.py --orders 500 --dashboard 0.1
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sk_bench \\
        .venv/bin/python bench/reconcile_throughput.py

Orders are placed and paid at localstripe first (untimed); a share of them then gets a refund
made directly at localstripe, as from the Stripe Dashboard. Three runs are timed: a report
(read-only), a run with --fix that records those refunds, and a second --fix run that finds
nothing. The Stripe requests each run makes are counted by the SDK's HTTP client.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
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


def timed_run(gateway: Any, requests: list[str], *, fix: bool) -> dict[str, object]:
    from shopkeeper.reconciliation.services import reconcile

    before = len(requests)
    started = time.perf_counter()
    report = reconcile(fix=fix, gateway=gateway)
    elapsed = time.perf_counter() - started
    return {
        "fix": fix,
        "checked": report.checked,
        "differences": len(report.findings),
        "fixed": len(report.fixed),
        "exit_code": report.exit_code,
        "seconds": round(elapsed, 3),
        "ms_per_payment_intent": round(elapsed * 1000 / max(report.checked, 1), 2),
        "stripe_requests": len(requests) - before,
    }


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
    runs = [timed_run(gateway, requests, fix=fix) for fix in (False, True, True)]
    return {
        "database": connection.vendor,
        "orders": orders,
        "dashboard_refunds": len(refunded),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=300, help="paid orders (300)")
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
    for timed in result["runs"]:  # type: ignore[attr-defined]
        print(
            f"reconcile{' --fix' if timed['fix'] else ''}: {timed['checked']} PaymentIntents "
            f"in {timed['seconds']} s ({timed['ms_per_payment_intent']} ms each, "
            f"{timed['stripe_requests']} Stripe requests), {timed['differences']} differences, "
            f"{timed['fixed']} fixed, exit {timed['exit_code']}"
        )


if __name__ == "__main__":
    main()
