"""What POST /webhooks/stripe costs in SQL (like Saleor's query-count tests): a new event is a
read, its row and its job row in one transaction; a duplicate is the read alone: no write, no
transaction, no commit.

Counted with a `connection.execute_wrapper`, which sees every statement Django's connection
sends (procrastinate's INSERT included: it runs on that connection), and the commits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import paid_order
from tests.fakes import intent_event_payload, sign_payload

# The transactional database: the commit is counted as it happens in production.
pytestmark = pytest.mark.django_db(transaction=True)


class Statements:
    def __init__(self) -> None:
        self.sql: list[str] = []
        self.commits = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.sql.append(sql.strip().split()[0].upper())
        return execute(sql, params, many, context)


@contextmanager
def counted() -> Iterator[Statements]:
    statements = Statements()
    commit = connection.commit

    def counting_commit() -> None:
        statements.commits += 1
        commit()

    connection.commit = counting_commit  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(statements):
            yield statements
    finally:
        del connection.commit


def post(payload: bytes) -> Any:
    return Client().post(
        "/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload),
    )


@pytest.fixture
def payload(fake_gateway) -> bytes:
    order = paid_order(fake_gateway)
    intent = fake_gateway.retrieve_payment_intent(order.payments.get().intent_id)
    return intent_event_payload(intent, "payment_intent.succeeded", "evt_counted")


def test_given_a_new_event_then_three_statements_and_one_commit(payload):
    with counted() as statements:
        response = post(payload)

    assert response.json()["status"] == "received"
    # Is it stored? The event's row; its job (procrastinate_defer_jobs_v1).
    assert statements.sql == ["SELECT", "INSERT", "SELECT"]
    assert statements.commits == 1
    assert WebhookEvent.objects.get(event_id="evt_counted").status == "received"


def test_given_a_duplicate_then_one_statement_and_nothing_written(payload):
    post(payload)
    before = WebhookEvent.objects.values().get(event_id="evt_counted")

    with counted() as statements:
        response = post(payload)

    assert response.json()["status"] == "duplicate"
    assert statements.sql == ["SELECT"]
    assert statements.commits == 0
    assert WebhookEvent.objects.values().get(event_id="evt_counted") == before
