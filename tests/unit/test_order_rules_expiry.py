"""The pure expiry rule (orders.rules): which orders expire, and the reason they show."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shopkeeper.orders.rules import expiry_reason, is_due_to_expire

TTL = timedelta(minutes=60)


@pytest.mark.parametrize("payment_status", ["pending", "failed"])
def test_an_open_unpaid_order_expires_at_the_ttl_not_before(payment_status):
    assert is_due_to_expire("pending", payment_status, age=TTL, ttl=TTL)
    assert not is_due_to_expire("pending", payment_status, age=TTL - timedelta(seconds=1), ttl=TTL)


@pytest.mark.parametrize(
    "payment_status", ["authorized", "paid", "partially_refunded", "refunded", "voided"]
)
def test_money_taken_or_a_payment_voided_never_expires(payment_status):
    assert not is_due_to_expire("pending", payment_status, age=TTL * 100, ttl=TTL)


@pytest.mark.parametrize("status", ["processing", "cancelled", "closed"])
def test_only_an_open_order_expires(status):
    assert not is_due_to_expire(status, "pending", age=TTL * 100, ttl=TTL)


def test_the_reason_names_the_ttl():
    assert expiry_reason(TTL) == "expired: unpaid after 1h"
    assert expiry_reason(timedelta(minutes=2)) == "expired: unpaid after 2m"
    assert expiry_reason(timedelta(minutes=90)) == "expired: unpaid after 1h30m"
