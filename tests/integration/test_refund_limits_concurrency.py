"""The daily refund limit per member of staff holds under concurrency (PostgreSQL).

The order's row lock cannot serialise one person's refunds on different orders; the requester's
own row, locked after the order's, does. Each thread has its own connection and all start at
a barrier.
"""

from __future__ import annotations

import pytest

from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff
from tests.racing import race

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 20


@pytest.fixture(autouse=True)
def limits(settings):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "100.00"}}
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"USD": "50.00"}}


@pytest.mark.parametrize("stripe_status", ["succeeded", "pending"])
def test_given_one_support_member_refunding_20_orders_at_once_then_daily_limit_holds(
    fake_gateway, stripe_status
):
    fake_gateway.refund_status = stripe_status
    orders = [paid_order(fake_gateway) for _ in range(THREADS)]  # 25.00 USD each
    support = staff("support")

    results = race(
        THREADS,
        lambda i: request_refund(
            order_number=orders[i].number, actor=support, amount="10.00", reason="other"
        ),
    )

    assert all(isinstance(r, Refund) for r in results), results
    alone = [r for r in results if r.status == stripe_status]
    assert len(alone) == 5  # 5 x 10.00 = the 50.00 daily limit
    assert sum(1 for r in results if r.status == "awaiting_approval") == THREADS - 5
    assert len(fake_gateway.refunds) == 5


def test_given_two_support_members_racing_then_each_has_a_day_of_their_own(fake_gateway):
    orders = [paid_order(fake_gateway) for _ in range(THREADS)]
    people = [staff("support", "ann@shop.example"), staff("support", "bob@shop.example")]

    results = race(
        THREADS,
        lambda i: request_refund(
            order_number=orders[i].number, actor=people[i % 2], amount="10.00", reason="other"
        ),
    )

    alone = [r for r in results if isinstance(r, Refund) and r.status == "succeeded"]
    assert sorted(r.requested_by_id for r in alone) == sorted([p.pk for p in people] * 5)


def test_given_one_support_member_racing_on_one_order_then_the_order_limit_holds(
    fake_gateway, settings
):
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"USD": "1000.00"}}
    order = paid_order(fake_gateway, items={"LAMP": 6}, price="100.00")  # 605.00 USD
    support = staff("support")

    results = race(
        10,
        lambda i: request_refund(
            order_number=order.number, actor=support, amount="30.00", reason="other"
        ),
    )

    alone = [r for r in results if isinstance(r, Refund) and r.status == "succeeded"]
    assert len(alone) == 3  # 3 x 30.00 within the 100.00 limit; a fourth would pass it
