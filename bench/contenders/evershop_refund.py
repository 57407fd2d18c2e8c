#!/usr/bin/env python3
"""EverShop 2.2.1's admin online refund, timed with 1 and 8 clients, beside a bare Stripe refund.

    .venv/bin/python bench/contenders/evershop_refund.py --start    # localstripe + EverShop here
    .venv/bin/python bench/contenders/evershop_refund.py \
        --url http://127.0.0.1:3000 --stripe-url http://127.0.0.1:8420   # EverShop serving already

EverShop must be installed first (bench/contenders/evershop.py install). With --url, it must be
the EverShop that `evershop.py serve --stripe-url URL` started against that same localstripe.

What is timed is EverShop's refund as its admin order page's "Refund" form sends it:
POST /api/stripe/paymentIntents/refund {"order_id": "<id>", "amount": "1.00"} with the admin
session cookie (one login per run). EverShop then, in one transaction: loads the order and its
payment_transaction, creates the refund at Stripe, retrieves the charge, updates the payment
status and adds an activity-log row. Every refund must answer 200 with {"data": {"amount": 100}}.

Untimed beforehand: `--refunds` / `--per-order` paid orders per phase, each placed through
EverShop's checkout API and paid as evershop.py describes. Each client thread has its own
keep-alive connection and its own orders (refunded `--per-order` times by 1.00 in turn), so no
two clients touch one order. In each round the bare call runs too: one `refunds.create`
(stripe-python, own keep-alive client per thread, an Idempotency-Key) of a PaymentIntent confirmed
at the same localstripe. One JSON line per phase, then one with the ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import evershop  # the sibling module (run as a script)

AMOUNT = "1.00"
Calls = list[list[Callable[[], None]]]  # per client thread, its calls in order


def stripe_client(stripe_url: str) -> Any:
    import stripe

    return stripe.StripeClient(
        evershop.SECRET_KEY,
        base_addresses={"api": stripe_url},
        http_client=stripe.RequestsClient(),  # a requests.Session: keep-alive
        max_network_retries=0,
    )


def evershop_work(
    url: str, stripe_url: str, cookie: str, clients: int, each: int, per_order: int
) -> Calls:
    """Places the orders (untimed) and returns the timed refund calls, per client."""
    shop = evershop.Http(url)
    stripe = stripe_client(stripe_url)
    work: Calls = []
    for c in range(clients):
        orders = [
            evershop.place_paid_order(shop, stripe, c * 10_000 + k)
            for k in range(math.ceil(each / per_order))
        ]
        admin = evershop.Http(url, cookie)

        def refund(order_id: int, admin: evershop.Http = admin) -> None:
            answer = admin.post_json(
                "/api/stripe/paymentIntents/refund", {"order_id": str(order_id), "amount": AMOUNT}
            )
            if answer.get("data", {}).get("amount") != 100:
                raise RuntimeError(f"unexpected refund answer {answer}")

        work.append([lambda o=orders[i // per_order].order_id, r=refund: r(o) for i in range(each)])
    return work


def bare_work(stripe_url: str, clients: int, each: int, per_order: int) -> Calls:
    setup = stripe_client(stripe_url)
    work: Calls = []
    for _ in range(clients):
        intents = [
            setup.v1.payment_intents.create(
                params={
                    "amount": evershop.PRICE * 100,
                    "currency": "usd",
                    "payment_method": "pm_card_visa",
                    "confirm": True,
                }
            ).id
            for _ in range(math.ceil(each / per_order))
        ]
        client = stripe_client(stripe_url)

        def refund(intent: str, client: Any = client) -> None:
            client.v1.refunds.create(
                params={"payment_intent": intent, "amount": 100},
                options={"idempotency_key": uuid.uuid4().hex},
            )

        work.append([lambda p=intents[i // per_order], r=refund: r(p) for i in range(each)])
    return work


def run_clients(name: str, work: Calls) -> dict[str, Any]:
    """Runs each client's calls in its own thread, all starting together; times each call."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(work) + 1)

    def client(calls: list[Callable[[], None]]) -> None:
        mine: list[float] = []
        barrier.wait()
        for call in calls:
            began = time.perf_counter()
            try:
                call()
            except Exception as exc:  # counted and reported, never hidden
                with lock:
                    errors.append(repr(exc)[:200])
                continue
            mine.append(time.perf_counter() - began)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(calls,)) for calls in work]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    cuts = (
        statistics.quantiles(latencies, n=100, method="inclusive")
        if len(latencies) > 1
        else [0.0] * 99
    )
    return {
        "path": name,
        "clients": len(work),
        "refunds": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "refunds_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(cuts[49] * 1000, 1),
        "p95_ms": round(cuts[94] * 1000, 1),
    }


def database_transactions() -> int:
    """Transactions committed or rolled back in EverShop's database so far (an autocommit
    statement is one). An idle backend reports its counts within 10 s (PostgreSQL 15), so wait
    that long first."""
    import psycopg

    time.sleep(11)
    with psycopg.connect(evershop.database_url("postgres"), autocommit=True) as db:
        row = db.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (evershop.DB_NAME,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def transactions_per_refund(url: str, stripe_url: str, cookie: str, refunds: int) -> float:
    """PostgreSQL transactions per EverShop refund: `refunds` sequential refunds (untimed),
    less what its cron and event processes commit meanwhile, measured over as long idle."""
    work = evershop_work(url, stripe_url, cookie, 1, refunds, 5)
    before = database_transactions()
    began = time.perf_counter()
    run_clients("count", work)
    took = time.perf_counter() - began
    during = database_transactions() - before - 1  # -1: the snapshot's own transaction
    time.sleep(took)
    idle = database_transactions() - before - during - 2
    return round((during - idle) / refunds, 1)


def same_order_race(url: str, stripe_url: str, cookie: str, clients: int) -> dict[str, Any]:
    """`clients` admins refund 10.00 of one 20.00 order at the same moment; what Stripe
    refunded in the end. localstripe, unlike Stripe, accepts over-refunds, so the shop's own
    bookkeeping is all that stands between the order and refunding it several times."""
    stripe = stripe_client(stripe_url)
    order = evershop.place_paid_order(evershop.Http(url), stripe, 99_999)
    admins = [evershop.Http(url, cookie) for _ in range(clients)]
    answers: list[int] = []
    barrier = threading.Barrier(clients)

    def admin(http: evershop.Http) -> None:
        barrier.wait()
        status, _, _ = http.request(
            "POST",
            "/api/stripe/paymentIntents/refund",
            json.dumps({"order_id": str(order.order_id), "amount": "10.00"}).encode(),
        )
        answers.append(status)

    threads = [threading.Thread(target=admin, args=(http,)) for http in admins]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refunds = stripe.v1.refunds.list(params={"payment_intent": order.payment_intent, "limit": 100})
    refunded = sum(refund.amount for refund in refunds.data)
    return {
        "path": "evershop_same_order_race",
        "clients": clients,
        "order_total": f"{order.amount / 100:.2f}",
        "answered_200": answers.count(200),
        "refunded_at_stripe": f"{refunded / 100:.2f}",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_localstripe() -> tuple[subprocess.Popen[bytes], str]:
    from shopkeeper.demo.localstripe_server import wait_until_up

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper.demo.localstripe_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url)
    return process, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--start", action="store_true", help="start a localstripe and EverShop here"
    )
    parser.add_argument("--url", help="a running EverShop (with --stripe-url)")
    parser.add_argument("--stripe-url", help="the localstripe that EverShop uses")
    parser.add_argument("--clients", default="1,8", help="client counts, comma-separated (1,8)")
    parser.add_argument("--refunds", type=int, default=80, help="timed refunds per phase (80)")
    parser.add_argument("--per-order", type=int, default=5, help="refunds of 1.00 per order (5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of the two paths (2)")
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed refunds first, 1 client (10)"
    )
    parser.add_argument("--no-bare", action="store_true", help="skip the bare Stripe call")
    parser.add_argument(
        "--count", type=int, default=20, help="untimed refunds to count transactions of (20; 0: no)"
    )
    parser.add_argument(
        "--race",
        type=int,
        default=8,
        help="admins refunding one order at once at the end (8; 0: no)",
    )
    args = parser.parse_args()
    if args.per_order * 100 > evershop.PRICE * 100:
        parser.error(
            f"--per-order at most {evershop.PRICE} (1.00 each on a {evershop.PRICE}.00 order)"
        )
    stops: list[Callable[[], None]] = []  # run last first
    try:
        if args.start:
            localstripe, stripe_url = start_localstripe()
            stops.append(localstripe.terminate)
            port = free_port()
            server = evershop.start(stripe_url, port)
            stops.append(lambda: evershop.stop(server))
            url = f"http://127.0.0.1:{port}"
        elif args.url and args.stripe_url:
            url, stripe_url = args.url.rstrip("/"), args.stripe_url.rstrip("/")
        else:
            parser.error("give --start, or --url and --stripe-url")
        cookie = evershop.login(url)
        counts = [int(n) for n in args.clients.split(",")]
        if args.warmup:
            run_clients(
                "warmup", evershop_work(url, stripe_url, cookie, 1, args.warmup, args.per_order)
            )
        phases: list[dict[str, Any]] = []
        for round_number in range(1, args.rounds + 1):
            for clients in counts:
                each = max(1, args.refunds // clients)
                names = ["evershop"] if args.no_bare else ["evershop", "bare"]
                for name in names:
                    if name == "evershop":
                        work = evershop_work(url, stripe_url, cookie, clients, each, args.per_order)
                    else:
                        work = bare_work(stripe_url, clients, each, args.per_order)
                    phase = run_clients(name, work)
                    phase["round"] = round_number
                    phases.append(phase)
                    print(json.dumps(phase), flush=True)
        print(json.dumps(summary(phases, counts)), flush=True)
        if args.count:
            count = transactions_per_refund(url, stripe_url, cookie, args.count)
            print(json.dumps({"path": "evershop", "db_transactions_per_refund": count}), flush=True)
        if args.race:
            print(json.dumps(same_order_race(url, stripe_url, cookie, args.race)), flush=True)
    finally:
        for stop in reversed(stops):
            stop()


def summary(phases: list[dict[str, Any]], counts: list[int]) -> dict[str, Any]:
    """Per path and client count, the median over rounds of refunds/s, p50 and p95;
    then EverShop over the bare call."""
    out: dict[str, Any] = {"summary": "EverShop 2.2.1 admin refund / bare Stripe refund"}
    for clients in counts:
        for name in ("evershop", "bare"):
            mine = [p for p in phases if p["path"] == name and p["clients"] == clients]
            if not mine:
                continue
            out[f"{name}_{clients}"] = {
                "refunds_per_s": round(statistics.median(p["refunds_per_s"] for p in mine), 1),
                "p50_ms": round(statistics.median(p["p50_ms"] for p in mine), 1),
                "p95_ms": round(statistics.median(p["p95_ms"] for p in mine), 1),
                "errors": sum(p["errors"] for p in mine),
            }
        if f"evershop_{clients}" in out and f"bare_{clients}" in out:
            shop, bare = out[f"evershop_{clients}"], out[f"bare_{clients}"]
            out[f"ratio_{clients}_refunds_per_s"] = round(
                shop["refunds_per_s"] / bare["refunds_per_s"], 3
            )
            out[f"added_p50_ms_{clients}"] = round(shop["p50_ms"] - bare["p50_ms"], 1)
    return out


if __name__ == "__main__":
    main()
