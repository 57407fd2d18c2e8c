"""How many SQL statements the back office's orders list and order page cost, counted so that
the number cannot creep back up (tests/integration/test_query_counts.py does the API's)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from shopkeeper.fulfilment.services import ship_order
from shopkeeper.returns.rules import ReturnLineRequest
from shopkeeper.returns.services import receive_return, refund_return, request_return
from tests.factories import paid_order, requested_refund, staff

pytestmark = pytest.mark.django_db

# The session and the user, then the page's own statements.
LIST_STATEMENTS = 4  # + the orders, the approval queue
SEARCH_STATEMENTS = 7  # + exact look-up, the window (or then ids, then their page)
ORDER_PAGE_STATEMENTS = 8  # + the order, its detail, audit entries, ledger, refund limits (2)
RETURNS_LIST_STATEMENTS = 4  # + the returns (with order and refund), their lines


@pytest.fixture
def approver() -> Client:
    client = Client()
    client.force_login(staff("owner"))
    return client


@pytest.fixture
def refunded(fake_gateway):
    """Paid orders, one with a refund done and one awaiting approval (above support's limit)."""
    orders = [paid_order(fake_gateway, price="10.50", items={"MUG": 10}) for _ in range(3)]
    requested_refund(orders[0], actor=staff("manager"), amount="5.00", gateway=fake_gateway)
    requested_refund(orders[0], actor=staff("support"), amount="100.00", gateway=fake_gateway)
    return orders[0]


def statements(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return [query["sql"] for query in captured.captured_queries]


def test_the_orders_list_is_four_statements_with_the_approval_queue(approver, refunded):
    html = approver.get("/admin/orders").content.decode()
    assert 'data-testid="approval-queue"' in html and "100.00 USD" in html
    assert len(re.findall(r"<tr data-order=", html)) == 3

    run = statements(approver, "/admin/orders")
    assert len(run) <= LIST_STATEMENTS, "\n".join(run)
    run = statements(approver, "/admin/orders?status=processing&payment_status=paid")
    assert len(run) <= LIST_STATEMENTS, "\n".join(run)


@pytest.mark.parametrize("term", ["whole number", "part of number", "@example", "nothing-here"])
def test_a_search_adds_at_most_three_statements(approver, refunded, term):
    q = {"whole number": refunded.number, "part of number": refunded.number[-4:]}.get(term, term)
    run = statements(approver, f"/admin/orders?q={q}")
    assert len(run) <= SEARCH_STATEMENTS, "\n".join(run)


def test_the_order_page_and_its_panel_are_eight_statements(approver, refunded):
    html = approver.get(f"/admin/orders/{refunded.number}").content.decode()
    assert "100.00" in html and "5.00" in html

    for url in (f"/admin/orders/{refunded.number}", f"/admin/orders/{refunded.number}/panel"):
        run = statements(approver, url)
        assert len(run) <= ORDER_PAGE_STATEMENTS, "\n".join(run)


def test_the_returns_list_is_four_statements_however_many_returns_and_lines(approver, fake_gateway):
    manager = staff("manager")
    for _ in range(3):
        order = paid_order(fake_gateway, price="10.00", items={"MUG": 4, "CAP": 2})
        ship_order(order_number=order.number, actor=manager)
        for lines in ({"MUG": 1, "CAP": 1}, {"MUG": 2}):
            request_return(
                order_number=order.number,
                lines=[ReturnLineRequest(sku, q, "damaged") for sku, q in lines.items()],
                actor=manager,
            )
        refunded = request_return(
            order_number=order.number, lines=[ReturnLineRequest("CAP", 1, "other")], actor=manager
        )
        receive_return(return_id=refunded.pk, actor=manager)
        refund_return(return_id=refunded.pk, actor=manager)
    html = approver.get("/admin/returns/").content.decode()
    assert len(re.findall(r"<tr data-return=", html)) == 6

    for url in ("/admin/returns/", "/admin/returns/?status=refunded"):
        run = statements(approver, url)
        assert len(run) <= RETURNS_LIST_STATEMENTS, "\n".join(run)
