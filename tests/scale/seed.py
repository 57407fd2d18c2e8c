"""Rows for the scale tier, made in a process of their own on the tier's database.

    python -m tests.scale.seed --paid 110 --unpaid 3 --product LAST:5

The servers under test are other processes, so the rows must be committed in the tier's own
database (not pytest-django's per-test one); this runs the same factories (tests/factories.py)
there, against localstripe (STRIPE_API_BASE), and prints what the tests need as JSON: an owner's
token, the paid orders' numbers, and for each unpaid order (paid at Stripe, its webhook not
delivered yet) the `payment_intent.succeeded` event body to deliver.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

THREADS = 4  # orders are made this many at a time (the database and localstripe do the work)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--paid", type=int, default=0, help="orders paid in full (25.00 USD)")
    parser.add_argument("--unpaid", type=int, default=0, help="orders paid at Stripe only")
    parser.add_argument("--product", action="append", default=[], help="SKU:STOCK at 10.00")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopkeeper.settings")
    import django

    django.setup()
    from django.db import connections

    from shopkeeper.payments.provider import get_gateway
    from tests.factories import customer_pays, new_order, paid_order, product, staff, token_for
    from tests.fakes import intent_event_payload

    gateway = get_gateway()
    for spec in args.product:
        sku, _, stock = spec.partition(":")
        product(sku, stock=int(stock))
    for thread in range(THREADS):
        product(f"MUG{thread}", stock=100_000)

    def paid_orders(thread: int) -> list[str]:
        """This thread's share, of a product of its own (no wait on another's stock row)."""
        try:
            share = range(thread, args.paid, THREADS)
            return [paid_order(gateway, items={f"MUG{thread}": 2}).number for _ in share]
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        paid = [number for share in pool.map(paid_orders, range(THREADS)) for number in share]
    unpaid = []
    for index in range(args.unpaid):
        order = new_order(gateway, items={"MUG0": 2})
        intent = customer_pays(gateway, order.payments.get().intent_id)
        body = intent_event_payload(intent, "payment_intent.succeeded", f"evt_scale_{index}")
        unpaid.append({"number": order.number, "event": body.decode()})
    token = token_for(staff("owner"))
    json.dump({"token": token, "paid": paid, "unpaid": unpaid}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
