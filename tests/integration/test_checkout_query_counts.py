"""How many SQL statements and commits a checkout costs, so that the number cannot creep back.

Every statement on the connection is counted (savepoints and locks included), and so is every
commit: each transaction that commits, and each write run outside one (autocommit; a read run
so is listed too, in `autocommitted`). The ceilings are what checkout makes today; lower them
when it makes fewer, never raise them to let a change pass.

Where the statements go (API checkout, any number of lines, FakeGateway as Stripe):
- transaction 1: the products read, the order, its lines in one INSERT, the `order.placed`
  audit entry, and last the products' rows locked in one statement and their stock taken in
  one UPDATE (locked for the commit only, so checkouts of one product barely queue);
- Stripe's PaymentIntent create, outside any transaction;
- transaction 2: the payment row (one INSERT), the `payment.started` audit entry, and the
  customer's "order placed" mail owed (its outbox row and its job: 2 statements, issue 11);
- the answer: nothing (built from what the request wrote, `checkout.answer`).
Each audit entry is 8 statements today (a savepoint, the chain head created and locked, the
table lock and sequence number, the entry, the head's update, the release): 16 of the 22; with
a two-statement append, 10 in all.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connections
from django.test import Client

from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import Payment
from tests.factories import ADDRESS, address

pytestmark = pytest.mark.django_db(transaction=True)

# Measured on this branch; see the module docstring for where they go. One audit append is
# AUDIT_APPEND_STATEMENTS (audit.services.record): lower it when the append gets cheaper.
AUDIT_APPEND_STATEMENTS = 2
# 6 + the one statement of the "order placed" mail (notifications.services.notify, issue 11).
API_CHECKOUT_STATEMENTS = 7 + 2 * AUDIT_APPEND_STATEMENTS
STOREFRONT_CHECKOUT_STATEMENTS = 2 + API_CHECKOUT_STATEMENTS  # the session's read and update
ABANDON_STATEMENTS = 6 + AUDIT_APPEND_STATEMENTS
CHECKOUT_COMMITS = 2


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)
    commits: int = 0
    autocommitted: list[str] = field(default_factory=list)
    # The statements and the commits ("COMMIT") as they came.
    events: list[str] = field(default_factory=list)

    def report(self) -> str:
        return "\n".join(self.statements)


@contextmanager
def counting_statements() -> Iterator[Counted]:
    """Every statement and commit on the default connection while the block runs."""
    counted = Counted()
    wrapper = connections["default"]
    wrapper.ensure_connection()
    commit: Callable[[], None] = wrapper.commit

    def count_statement(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        counted.statements.append(sql)
        counted.events.append(sql)
        if not wrapper.in_atomic_block:
            counted.autocommitted.append(sql)
        return execute(sql, params, many, context)

    def count_commit() -> None:
        counted.commits += 1
        counted.events.append("COMMIT")
        commit()

    wrapper.commit = count_commit  # type: ignore[method-assign]
    try:
        with wrapper.execute_wrapper(count_statement):
            yield counted
    finally:
        del wrapper.commit
    counted.commits += sum(
        not sql.lstrip().upper().startswith("SELECT") for sql in counted.autocommitted
    )


@pytest.fixture
def catalog() -> None:
    create_product(sku="MUG", name="Mug", price="10.50", currency="USD", stock=100)
    create_product(sku="CAP", name="Cap", price="7.25", currency="USD", stock=100)
    create_product(sku="TEE", name="Tee", price="15.00", currency="USD", stock=100)


def api_checkout(items: list[dict[str, object]]) -> tuple[dict[str, Any], Counted]:
    payload = {"email": "ada@example.com", "items": items, "shipping_address": ADDRESS}
    client = Client()
    with counting_statements() as counted:
        response = client.post(
            "/api/checkout", data=json.dumps(payload), content_type="application/json"
        )
    assert response.status_code == 201, response.content
    return response.json(), counted


@pytest.mark.parametrize("capture", ["automatic", "manual"])
def test_given_a_basket_when_checking_out_through_the_api_then_22_statements_in_2_commits(
    catalog, settings, capture
):
    settings.SHOPKEEPER_CAPTURE = capture

    answer, counted = api_checkout(
        [
            {"sku": "TEE", "quantity": 1},
            {"sku": "MUG", "quantity": 2},
            {"sku": "CAP", "quantity": 3},
        ]
    )

    assert len(counted.statements) <= API_CHECKOUT_STATEMENTS, counted.report()
    assert counted.commits <= CHECKOUT_COMMITS, counted.report()
    assert counted.autocommitted == []  # every statement inside one of the two transactions
    assert answer["order"]["payment"]["capture_method"] == capture
    # The products' rows are locked last, just before the first commit: one statement to lock
    # them, one to take their stock.
    first_commit = counted.events.index("COMMIT")
    lock, take = counted.events[first_commit - 2 : first_commit]
    assert lock.startswith('SELECT "catalog_product"') and lock.endswith("FOR UPDATE")
    assert take.startswith('UPDATE "catalog_product"')
    assert sum("catalog_product" in sql for sql in counted.statements) == 3  # with the read
    assert Payment.objects.get().capture_method == capture


def test_given_one_line_or_three_when_checking_out_then_the_same_statements(catalog):
    _, one = api_checkout([{"sku": "MUG", "quantity": 1}])
    _, three = api_checkout(
        [
            {"sku": "TEE", "quantity": 1},
            {"sku": "MUG", "quantity": 2},
            {"sku": "CAP", "quantity": 3},
        ]
    )

    assert len(one.statements) == len(three.statements), one.report() + "\n--\n" + three.report()
    assert Order.objects.count() == 2


def test_given_an_unknown_sku_when_checking_out_then_no_write_and_nothing_committed(catalog):
    payload = {"email": "ada@example.com", "items": [{"sku": "NOPE", "quantity": 1}]}
    payload["shipping_address"] = ADDRESS
    client = Client()
    with counting_statements() as counted:
        response = client.post(
            "/api/checkout", data=json.dumps(payload), content_type="application/json"
        )

    assert response.status_code == 422
    assert counted.commits == 0
    assert len(counted.statements) == 1, counted.report()  # the products' read, rolled back


def test_given_a_cart_when_checking_out_in_the_storefront_then_24_statements_in_2_commits(
    catalog,
):
    shopper = Client()
    shopper.post("/cart/add", {"sku": "MUG", "quantity": 2})
    shopper.post("/cart/add", {"sku": "CAP", "quantity": 1})

    with counting_statements() as counted:
        response = shopper.post("/checkout", address(email="ada@example.com"))

    assert response.status_code == 302, response.content
    # The session's read, the API checkout's 22, the session's update (it remembers the order).
    assert len(counted.statements) <= STOREFRONT_CHECKOUT_STATEMENTS, counted.report()
    assert counted.commits <= CHECKOUT_COMMITS + 1, counted.report()


def test_given_stripe_down_when_checking_out_then_the_order_is_abandoned_in_one_more_commit(
    catalog, fake_gateway
):
    """The abandoned order's stock comes back in one UPDATE per table, however many lines:
    its row and its lines locked, its products locked and given back, the lines marked, the
    order cancelled, the `order.abandoned` entry."""
    fake_gateway.fail_next["create_payment_intent"] = [PaymentOutcomeUnknown("timed out")]
    items = [{"sku": "TEE", "quantity": 1}, {"sku": "MUG", "quantity": 2}]
    items.append({"sku": "CAP", "quantity": 3})
    payload = {"email": "ada@example.com", "items": items, "shipping_address": ADDRESS}
    client = Client()
    with counting_statements() as counted:
        response = client.post(
            "/api/checkout", data=json.dumps(payload), content_type="application/json"
        )

    assert response.status_code == 503, response.content
    assert counted.commits == 2, counted.report()
    placing = counted.events.index("COMMIT")
    abandoning = counted.events[placing + 1 : -1]
    assert len(abandoning) <= ABANDON_STATEMENTS, "\n".join(abandoning)
    assert dict(Product.objects.values_list("sku", "stock")) == {"MUG": 100, "CAP": 100, "TEE": 100}
