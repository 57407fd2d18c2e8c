"""How many SQL statements and commits a request costs, counted so that the number cannot creep
back up (as Saleor's query-count benchmarks do).

Every statement Django reports on the connection is counted (`CaptureQueriesContext`: BEGIN,
COMMIT and SAVEPOINT included). A commit is a COMMIT, or a write run outside any transaction
(autocommit: its own transaction). The tests run with real transactions (`transaction=True`),
as a server does, not inside the test's wrapping transaction.

Budgets (issue 9): a refund through the API with an Idempotency-Key, at most 20 statements and 3
commits; a replay of it with the same key fewer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shopkeeper.accounts.models import ApiToken
from shopkeeper.fulfilment.services import ship_order
from shopkeeper.returns.rules import ReturnLineRequest
from shopkeeper.returns.services import request_return
from tests.factories import paid_order, staff, token_for
from tests.integration.refund_fixtures import Api

pytestmark = pytest.mark.django_db(transaction=True)

# Issue 9's 20, kept with issue 11's "refund made" mail owed in the refund's transaction (its
# outbox row and job in one statement, notifications.services.notify) by writing the settled
# refund and the order's payment status in one statement (rows.update_together).
REFUND_STATEMENTS = 20
REFUND_COMMITS = 3
REPLAY_STATEMENTS = 6
WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|WITH|MERGE|LOCK)\b", re.IGNORECASE)


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.statements)

    @property
    def commits(self) -> int:
        """COMMITs, plus each write made outside a transaction (autocommit commits it)."""
        commits, in_transaction = 0, False
        for sql in self.statements:
            verb = sql.split(None, 1)[0].upper() if sql.strip() else ""
            if verb == "BEGIN":
                in_transaction = True
            elif verb in ("COMMIT", "ROLLBACK"):
                commits += verb == "COMMIT"
                in_transaction = False
            elif not in_transaction and WRITE.match(sql):
                commits += 1
        return commits

    def kinds(self) -> Counter[str]:
        return Counter(sql.split(None, 1)[0].upper() for sql in self.statements if sql.strip())

    def __str__(self) -> str:
        lines = [f"{self.total} statements, {self.commits} commits: {dict(self.kinds())}"]
        lines += [f"  {i:2d}. {sql[:160]}" for i, sql in enumerate(self.statements, 1)]
        return "\n".join(lines)


@contextmanager
def counting() -> Iterator[Counted]:
    counted = Counted()
    with CaptureQueriesContext(connection) as captured:
        yield counted
    counted.statements = [query["sql"] for query in captured.captured_queries]


@pytest.fixture
def manager_api() -> Api:
    raw = token_for(staff("manager"))
    # A token in use: its last use was written a moment ago (at most every few minutes).
    ApiToken.objects.update(last_used_at=timezone.now())
    return Api(raw)


def refund(api: Api, number: str, body: dict[str, object], key: str) -> Counted:
    with counting() as counted:
        response = api.refund(number, body, key=key)
    assert response.status_code == 201, response.content
    print(counted)  # shown by pytest when the budget is broken
    return counted


def test_given_paid_order_when_refunded_in_full_then_within_the_statement_budget(
    fake_gateway, manager_api
):
    order = paid_order(fake_gateway)

    counted = refund(manager_api, order.number, {"reason": "requested_by_customer"}, "full-1")

    assert counted.total <= REFUND_STATEMENTS, str(counted)
    assert counted.commits <= REFUND_COMMITS, str(counted)
    assert "SAVEPOINT" not in counted.kinds(), str(counted)


def test_given_paid_order_when_partly_refunded_then_within_the_statement_budget(
    fake_gateway, manager_api
):
    order = paid_order(fake_gateway)
    body = {"amount": "5.00", "reason": "requested_by_customer"}

    first = refund(manager_api, order.number, body, "partial-1")
    second = refund(manager_api, order.number, body, "partial-2")

    for counted in (first, second):
        assert counted.total <= REFUND_STATEMENTS, str(counted)
        assert counted.commits <= REFUND_COMMITS, str(counted)


def test_given_a_refund_when_replayed_with_its_key_then_fewer_statements_than_the_refund(
    fake_gateway, manager_api
):
    order = paid_order(fake_gateway)
    body = {"amount": "5.00", "reason": "requested_by_customer"}
    made = refund(manager_api, order.number, body, "replayed-1")

    with counting() as replay:
        response = manager_api.refund(order.number, body, key="replayed-1")

    assert response.status_code == 201 and response["Idempotent-Replayed"] == "true"
    print(replay)
    assert replay.total <= REPLAY_STATEMENTS < made.total, str(replay)
    # Its one write is the claim finding the key taken (ON CONFLICT DO NOTHING: nothing
    # written); no transaction.
    assert "COMMIT" not in replay.kinds() and "UPDATE" not in replay.kinds(), str(replay)


def test_given_a_support_agent_within_limits_when_refunding_then_one_statement_more(
    fake_gateway,
):
    """A role with a daily limit: the agent's own row is locked before their last 24 hours of
    refunds are summed (refunds.approval.lock_staff), one statement more than a manager's."""
    order = paid_order(fake_gateway)
    api = Api(token_for(staff("support")))
    ApiToken.objects.update(last_used_at=timezone.now())

    counted = refund(api, order.number, {"amount": "5.00", "reason": "duplicate"}, "support-1")

    assert counted.total <= REFUND_STATEMENTS + 1, str(counted)
    assert counted.commits <= REFUND_COMMITS, str(counted)


def test_given_a_token_used_minutes_ago_when_used_again_then_last_used_at_is_not_written(
    fake_gateway, manager_api
):
    with counting() as counted:
        response = manager_api.get("/api/admin/orders")

    assert response.status_code == 200
    assert not any("last_used_at" in sql and sql.startswith("UPDATE") for sql in counted.statements)
    assert counted.commits == 0, str(counted)


def test_given_a_token_last_used_long_ago_when_used_then_last_used_at_is_written_once(
    fake_gateway, manager_api
):
    long_ago = timezone.now() - timedelta(hours=1)
    ApiToken.objects.update(last_used_at=long_ago)

    manager_api.get("/api/admin/orders")
    first = ApiToken.objects.get().last_used_at
    manager_api.get("/api/admin/orders")

    assert first is not None and first > long_ago
    assert ApiToken.objects.get().last_used_at == first


def test_given_a_refunded_order_when_its_detail_is_read_then_three_statements(
    fake_gateway, manager_api
):
    """The order detail (the API's, the order page's, a refund's 201) is one statement, after
    the token and the order's number: it was 14 (issue 9)."""
    order = paid_order(fake_gateway)
    refund(manager_api, order.number, {"amount": "5.00", "reason": "other"}, "detail-1")

    with counting() as counted:
        response = manager_api.get(f"/api/admin/orders/{order.number}")

    assert response.status_code == 200 and len(response.json()["refunds"]) == 1
    assert counted.total <= 3, str(counted)
    assert counted.commits == 0, str(counted)


def test_the_returns_list_is_three_statements_however_many_returns(fake_gateway, manager_api):
    """The token, the returns (with order and refund), their lines: it was one more per
    return."""
    manager = staff("support")
    for _ in range(3):
        order = paid_order(fake_gateway, items={"MUG": 3})
        ship_order(order_number=order.number, actor=manager)
        for _ in range(2):
            request_return(
                order_number=order.number,
                lines=[ReturnLineRequest("MUG", 1, "damaged")],
                actor=manager,
            )

    with counting() as counted:
        response = manager_api.get("/api/admin/returns?status=requested")

    assert response.status_code == 200 and len(response.json()["items"]) == 6
    assert all(item["lines"] for item in response.json()["items"])
    assert counted.total <= 3, str(counted)
