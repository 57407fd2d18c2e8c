"""Refunds whose outcome Stripe left unknown settle themselves: the worker sends them again.

When a send ends without Stripe's answer (a timeout, an answer lost), the refund stays pending
and `defer_settlement` (called where that is recorded, in the same transaction) schedules
`settle_unknown_refund`: after 1 minute it sends the refund again with its one idempotency key
(Stripe replays the first answer, or makes it once), and records the answer as any send does.
Still unknown, the next step is scheduled: after 5, 30 minutes, 2, 6, 12 hours
(SHOPKEEPER_REFUND_SETTLE_DELAYS), some 21 hours in all, within the 24 hours Stripe keeps a key.
After the last, the refund stays pending for `shopkeeper reconcile`, which reads Stripe's list
of the payment's refunds instead of trusting a key Stripe may have forgotten.

Each step is one job with the refund's lock: never two sends of one refund at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from procrastinate.contrib.django import app

from shopkeeper.jobs.defer import defer_in_transaction

logger = logging.getLogger(__name__)


@app.task(name="refunds.settle_unknown_refund", queue="refunds")
def settle_unknown_refund(refund_id: int, step: int) -> None:
    """Send the refund again (step `step` of the schedule) and record Stripe's answer."""
    # services defers this task (defer_settlement), so it is imported when the job runs.
    from shopkeeper.refunds.services import execute_refund

    waited = settings.SHOPKEEPER_REFUND_SETTLE_DELAYS[step]
    # The wait is this job's in-flight window: a send older than it has ended at Stripe.
    execute_refund(
        refund_id=refund_id,
        in_flight_after=timezone.now() - timedelta(seconds=waited),
        settle_step=step + 1,
    )


def defer_settlement(refund_id: int, *, step: int) -> bool:
    """Schedule step `step` for a refund left unknown; False when the schedule is over."""
    delays = settings.SHOPKEEPER_REFUND_SETTLE_DELAYS
    if step >= len(delays):
        logger.warning("Refund %s: outcome still unknown after %s tries", refund_id, step)
        return False
    defer_in_transaction(
        settle_unknown_refund,
        lock=f"refund:{refund_id}",
        schedule_in_seconds=round(delays[step]),
        refund_id=refund_id,
        step=step,
    )
    return True
