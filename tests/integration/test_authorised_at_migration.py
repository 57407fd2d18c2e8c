"""Payments authorised before `Payment.authorized_at` existed get it from their ledger."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from shopkeeper.payments.models import LedgerEntry, Payment
from tests.factories import authorised_order, new_order, paid_order

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("payments", "0005_stripe_rate_limit")]
AFTER = [("payments", "0006_payment_authorized_at")]


def test_given_payments_from_before_when_migrated_then_authorised_at_is_the_ledgers_time(
    fake_gateway,
):
    authorised, paid = authorised_order(fake_gateway), paid_order(fake_gateway)
    unpaid = new_order(fake_gateway)
    recorded = dict(
        LedgerEntry.objects.filter(kind="authorization").values_list(
            "payment__order__number", "created_at"
        )
    )

    MigrationExecutor(connection).migrate(BEFORE)
    try:
        MigrationExecutor(connection).migrate(AFTER)
        # Named columns only: later migrations' columns are not there at AFTER.
        backfilled = dict(Payment.objects.values_list("order__number", "authorized_at"))
    finally:  # the next tests need the schema of today
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
    assert backfilled[authorised.number] == recorded[authorised.number]
    assert backfilled[paid.number] == recorded[paid.number]
    assert backfilled[unpaid.number] is None
