"""Several servers and workers on one database: exactly once, whichever process does the work.

Three `shopkeeper serve` processes and two workers share one PostgreSQL and one Stripe
(localstripe behind a counting proxy that honours idempotency keys as Stripe does), as behind a
load balancer. Requests are sent to all servers at once; what is checked is read from the
database and from what reached Stripe.
"""

from __future__ import annotations

import itertools
import signal
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.factories import address
from tests.fakes import sign_payload
from tests.racing import race
from tests.scale.installation import STALLED_AFTER, STRIPE_LIMIT, Installation, call, wait_for

pytestmark = pytest.mark.scale
REFUNDS = "/api/admin/orders/{}/refunds"


def refund(
    installation: Installation, server: int, number: str, amount: str, key: str
) -> tuple[int, Any]:
    return call(
        installation.servers[server % len(installation.servers)],
        "POST",
        REFUNDS.format(number),
        {"amount": amount, "reason": "other"},
        token=installation.token,
        key=key,
    )


def refunds_of(installation: Installation, number: str) -> list[tuple[str, int, str]]:
    return installation.query(
        "SELECT r.status, r.amount_minor, r.stripe_refund_id FROM refunds_refund r"
        " JOIN orders_order o ON o.id = r.order_id WHERE o.number = %s ORDER BY r.id",
        number,
    )


def ledger_of(installation: Installation, number: str, kind: str) -> list[tuple[str, int]]:
    return installation.query(
        "SELECT l.external_id, l.amount_minor FROM payments_ledgerentry l"
        " JOIN orders_order o ON o.id = l.order_id WHERE o.number = %s AND l.kind = %s"
        " ORDER BY l.id",
        number,
        kind,
    )


def test_given_same_refund_sent_to_every_server_then_one_refund_per_order(installation):
    """The same request (one Idempotency-Key) twice through each of the three servers, for
    ten orders at once: one refund each, at Stripe and in the ledger, and six equal answers."""
    orders = installation.seeded["paid"][:10]
    sends = [(number, server) for number in orders for server in range(6)]

    answers = race(
        len(sends),
        lambda i: refund(installation, sends[i][1], sends[i][0], "4.00", f"same-{sends[i][0]}"),
    )

    for number in orders:
        mine = [answers[i] for i, (n, _) in enumerate(sends) if n == number]
        assert {status for status, _ in mine} == {201}, mine
        assert len({body["refund"]["id"] for _, body in mine}) == 1, mine
        ((status, amount, stripe_id),) = refunds_of(installation, number)
        assert (status, amount) == ("succeeded", 400)
        assert ledger_of(installation, number, "refund") == [(stripe_id, 400)]
    assert installation.proxy.count("forwarded", path="/v1/refunds") == len(orders)


def test_given_refunds_racing_past_what_is_left_then_never_more_than_paid(installation):
    """Three different refunds of 10.00 on a 25.00 order, one through each server, for ten
    orders at once: two are made, the third is refused, none twice."""
    orders = installation.seeded["paid"][10:20]
    before = installation.proxy.count("forwarded", path="/v1/refunds")
    sends = [(number, server) for number in orders for server in range(3)]

    answers = race(
        len(sends),
        lambda i: refund(
            installation, sends[i][1], sends[i][0], "10.00", f"own-{sends[i][0]}-{sends[i][1]}"
        ),
    )

    for number in orders:
        statuses = sorted(
            status for (n, _), (status, _) in zip(sends, answers, strict=True) if n == number
        )
        assert statuses[:2] == [201, 201] and statuses[2] in (409, 422), answers
        made = refunds_of(installation, number)
        assert [(status, amount) for status, amount, _ in made] == [("succeeded", 1000)] * 2
        assert sum(amount for _, amount in ledger_of(installation, number, "refund")) == 2000
    assert installation.proxy.count("forwarded", path="/v1/refunds") - before == 2 * len(orders)


def test_given_same_webhook_delivered_to_every_server_then_processed_once(installation):
    """Stripe's `payment_intent.succeeded` for an order, three times to each server at once:
    stored once, processed once by one of the workers, the order paid once."""
    (unpaid,) = installation.seeded["unpaid"][:1]
    body = unpaid["event"].encode()

    answers = race(
        9,
        lambda i: call(
            installation.servers[i % 3],
            "POST",
            "/webhooks/stripe",
            raw=body,
            headers={"Stripe-Signature": sign_payload(body)},
        ),
    )

    assert {status for status, _ in answers} == {200}, answers
    assert sorted(answer["status"] for _, answer in answers) == ["duplicate"] * 8 + ["received"]
    wait_for("the event processed", lambda: event_status(installation, "evt_scale_0") != "received")
    assert installation.query(
        "SELECT status, attempts FROM payments_webhookevent WHERE event_id = %s", "evt_scale_0"
    ) == [("processed", 1)]
    assert payment_status(installation, unpaid["number"]) == "paid"
    assert [amount for _, amount in ledger_of(installation, unpaid["number"], "capture")] == [2500]


def test_given_checkouts_racing_for_the_last_units_then_no_oversell(installation):
    """Fifteen customers want one of the last five units, through the three servers at once."""

    def checkout(i: int) -> tuple[int, Any]:
        return call(
            installation.servers[i % 3],
            "POST",
            "/api/checkout",
            {
                "email": f"buyer{i}@example.com",
                "items": [{"sku": "LAST", "quantity": 1}],
                "shipping_address": address(),
            },
        )

    answers = race(15, checkout)

    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 5, 409: 10}, answers
    assert {body["code"] for status, body in answers if status == 409} == {"insufficient_stock"}
    assert installation.scalar("SELECT stock FROM catalog_product WHERE sku = 'LAST'") == 0
    sold = installation.scalar(
        "SELECT coalesce(sum(l.quantity), 0) FROM orders_orderline l"
        " JOIN catalog_product p ON p.id = l.product_id WHERE p.sku = 'LAST'"
    )
    assert sold == 5


def test_given_worker_killed_mid_job_then_other_worker_finishes_it_once(installation):
    """Worker `a` is held after the event's processing committed, before its job is marked
    done (failpoint `webhook.after_commit=hang`), and killed there with SIGKILL. Worker `b`
    retries the dead worker's job (stalled-job recovery), which finds the event done: the
    order is paid once. (`b` is stopped while `a` takes the job, so that `a` takes it.)"""
    unpaid = installation.seeded["unpaid"][1]
    body = unpaid["event"].encode()
    installation.stop_worker("b")
    installation.stop_worker("a")
    installation.start_worker("a", SHOPKEEPER_FAILPOINTS="webhook.after_commit=hang")
    installation.wait_for_worker("a")
    status, answer = call(
        installation.servers[1],
        "POST",
        "/webhooks/stripe",
        raw=body,
        headers={"Stripe-Signature": sign_payload(body)},
    )
    assert (status, answer["status"]) == (200, "received")
    wait_for(
        "worker a held at the failpoint",
        lambda: "Failpoint webhook.after_commit: holding" in installation.log("worker-a"),
    )
    job_id = job_of(installation, "evt_scale_1", status="doing")
    assert event_status(installation, "evt_scale_1") == "processed"  # committed before the kill
    installation.start_worker("b")
    installation.wait_for_worker("b")

    installation.stop_worker("a", sig=signal.SIGKILL)
    wait_for(
        "the dead worker's job to be retried and finished",
        lambda: job_status(installation, job_id) == "succeeded",
        timeout=60,
    )

    assert f"Stalled job {job_id} (stripe_events.process_event" in installation.log("worker-b")
    assert installation.query(
        "SELECT status, attempts FROM payments_webhookevent WHERE event_id = %s", "evt_scale_1"
    ) == [("processed", 1)]
    assert payment_status(installation, unpaid["number"]) == "paid"
    assert [amount for _, amount in ledger_of(installation, unpaid["number"], "capture")] == [2500]
    installation.start_worker("a")  # two workers again for what follows


def test_given_worker_paused_past_the_timeout_then_it_carries_on_when_it_wakes(installation):
    """Worker `b` is paused (SIGSTOP) for longer than the stalled timeout; worker `a`, starting
    meanwhile, prunes it as dead. Woken, `b` registers again and keeps taking jobs instead of
    stopping on its vanished id (shopkeeper.jobs.fetching)."""
    paused = installation.workers["b"]
    paused.send_signal(signal.SIGSTOP)
    try:
        time.sleep(STALLED_AFTER + 1.5)
        installation.stop_worker("a")  # its row goes with it: b's (and dead ones') are left
        silent = worker_ids(installation)
        installation.start_worker("a")
        wait_for(
            "worker a to start and prune the silent worker b",
            lambda: worker_ids(installation) and not worker_ids(installation) & silent,
        )
    finally:
        paused.send_signal(signal.SIGCONT)

    wait_for(
        "worker b to register again (or to stop)",
        lambda: (
            paused.poll() is not None or "was given up for dead" in installation.log("worker-b")
        ),
        timeout=30,
    )
    time.sleep(2)  # it fetches again and again (every second's periodic job)
    assert paused.poll() is None, installation.log("worker-b")[-3000:]
    assert worker_ids(installation) & silent  # b, under its own id again


def test_given_500_refunds_at_once_then_all_made_once_and_stripe_limit_kept(installation):
    """Ten refunds of 1.00 on each of 50 orders, sent at once across the three servers
    (100 connections at a time): every one succeeds, each reaches Stripe once, and no
    wall-clock second brings the proxy more than STRIPE_MAX_REQUESTS_PER_SECOND requests."""
    orders = installation.seeded["paid"][20:70]
    sends = [(number, n) for n, number in itertools.product(range(10), orders)]
    before = installation.proxy.count("forwarded", path="/v1/refunds")
    waits_before = limiter_waits(installation)
    started = time.time()

    with ThreadPoolExecutor(max_workers=100) as pool:
        answers = list(
            pool.map(
                lambda i: refund(installation, i, sends[i][0], "1.00", f"bulk-{i}"),
                range(len(sends)),
            )
        )
    took = time.time() - started

    assert Counter(status for status, _ in answers) == {201: 500}, Counter(
        str(body)[:200] for status, body in answers if status != 201
    )
    assert installation.proxy.count("forwarded", path="/v1/refunds") - before == 500
    assert installation.proxy.count("replayed", path="/v1/refunds") == 0
    made = installation.query(
        "SELECT count(*), count(DISTINCT r.stripe_refund_id) FROM refunds_refund r"
        " JOIN orders_order o ON o.id = r.order_id WHERE o.number = ANY(%s)"
        " AND r.status = 'succeeded' AND r.amount_minor = 100",
        orders,
    )
    assert made == [(500, 500)]
    busiest = installation.proxy.busiest_second(since=started)
    waits = limiter_waits(installation) - waits_before
    installation.note(
        f"500 refunds in {took:.1f} s; busiest second at Stripe: {busiest} requests"
        f" (limit {STRIPE_LIMIT}); turns waited for at the limiter: {waits}"
    )
    assert busiest <= STRIPE_LIMIT
    assert installation.proxy.busiest_second(since=started, path="/v1/refunds") <= STRIPE_LIMIT


def worker_ids(installation: Installation) -> set[int]:
    return {row[0] for row in installation.query("SELECT id FROM procrastinate_workers")}


def limiter_waits(installation: Installation) -> int:
    """Turns that had to wait, in both buckets (the account's and the endpoint's)."""
    return int(
        installation.scalar("SELECT coalesce(sum(waits), 0) FROM payments_stripe_rate_bucket")
    )


def event_status(installation: Installation, event_id: str) -> str:
    return str(
        installation.scalar(
            "SELECT status FROM payments_webhookevent WHERE event_id = %s", event_id
        )
    )


def payment_status(installation: Installation, number: str) -> str:
    return str(
        installation.scalar("SELECT payment_status FROM orders_order WHERE number = %s", number)
    )


def job_of(installation: Installation, event_id: str, *, status: str) -> int:
    rows = installation.query(
        "SELECT id FROM procrastinate_jobs WHERE task_name = 'stripe_events.process_event'"
        " AND args->>'event_id' = %s AND status = %s",
        event_id,
        status,
    )
    assert len(rows) == 1, rows
    return int(rows[0][0])


def job_status(installation: Installation, job_id: int) -> str:
    return str(installation.scalar("SELECT status FROM procrastinate_jobs WHERE id = %s", job_id))
