"""The orders' periodic jobs (docs/operations.md, "Periodic jobs").

`orders.expire_unpaid_orders` runs every 30 seconds (procrastinate's cron with a seconds
field; one run per tick whatever the number of workers) and finds the orders due to expire in
one indexed query. Each gets a job of its own, `orders.expire_unpaid_order`, deferred in its own
transaction: one order per transaction, and per job lock `stripe:<PaymentIntent>`, the lock of
the webhook processing of that payment (stripe_events.job_lock), so the two never run at once.
A `queueing_lock` per order keeps a slow order from piling up jobs run after run.
"""

from __future__ import annotations

import logging

from django.db import transaction
from procrastinate import exceptions
from procrastinate.contrib.django import app

from shopkeeper.jobs.defer import defer_in_transaction
from shopkeeper.orders.expiry import DueOrder, expire_unpaid_order, orders_due_to_expire

logger = logging.getLogger(__name__)

# procrastinate's cron: minute hour day month weekday, then seconds.
EXPIRY_CRON = "* * * * * */30"


@app.task(name="orders.expire_unpaid_order", queue="orders")
def expire_unpaid_order_job(order_number: str) -> str:
    return str(expire_unpaid_order(order_number=order_number))


@app.periodic(cron=EXPIRY_CRON)
@app.task(name="orders.expire_unpaid_orders", queue="orders", queueing_lock="expire_unpaid")
def expire_unpaid_orders(timestamp: int) -> int:
    """Defer the expiry of every order due; how many were deferred."""
    deferred = sum(_defer_expiry(due) for due in orders_due_to_expire())
    if deferred:
        logger.info("Expiring %d unpaid orders", deferred)
    return deferred


def _defer_expiry(due: DueOrder) -> bool:
    lock = f"stripe:{due.intent_id}" if due.intent_id else f"order:{due.number}"
    try:
        with transaction.atomic():
            defer_in_transaction(
                expire_unpaid_order_job,
                lock=lock,
                queueing_lock=f"expire:{due.number}",
                order_number=due.number,
            )
    except exceptions.AlreadyEnqueued:
        return False  # the previous run's job for it has not run yet
    return True
