"""The orders' periodic jobs (docs/operations.md, "Periodic jobs").

`orders.expire_unpaid_orders` runs every 30 seconds (procrastinate's cron with a seconds
field; one run per tick whatever the number of workers) and finds the orders due to expire in
one indexed query. Each gets a job of its own, `orders.expire_unpaid_order`, deferred in its own
transaction: one order per transaction, and per job lock `stripe:<PaymentIntent>`, the lock of
the webhook processing of that payment (stripe_events.job_lock), so the two never run at once.
A `queueing_lock` per order keeps a slow order from piling up jobs run after run.

`orders.give_back_late_payments`, on the same schedule, finds the payments flagged
`paid_after_cancel` (orders.late_payments) and gives each back in a job of its own, under the
same `stripe:<PaymentIntent>` lock.
"""

from __future__ import annotations

import logging

from django.db import transaction
from procrastinate import exceptions
from procrastinate.contrib.django import app

from shopkeeper.jobs.defer import defer_in_transaction
from shopkeeper.orders import authorisations as authorisations  # its tasks, for autodiscovery
from shopkeeper.orders.expiry import DueOrder, expire_unpaid_order, orders_due_to_expire
from shopkeeper.orders.late_payments import LatePayment, give_back_late_payment, late_payments

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


@app.task(name="orders.give_back_late_payment", queue="orders")
def give_back_late_payment_job(order_number: str, intent_id: str) -> str:
    return str(give_back_late_payment(order_number=order_number, intent_id=intent_id))


@app.periodic(cron=EXPIRY_CRON)
@app.task(name="orders.give_back_late_payments", queue="orders", queueing_lock="late_payments")
def give_back_late_payments(timestamp: int) -> int:
    """Defer the giving back of every payment flagged as taken for a cancelled order."""
    return sum(_defer_give_back(late) for late in late_payments())


def _defer_give_back(late: LatePayment) -> bool:
    try:
        with transaction.atomic():
            defer_in_transaction(
                give_back_late_payment_job,
                lock=f"stripe:{late.intent_id}",
                queueing_lock=f"late-payment:{late.intent_id}",
                order_number=late.order_number,
                intent_id=late.intent_id,
            )
    except exceptions.AlreadyEnqueued:
        return False
    return True
