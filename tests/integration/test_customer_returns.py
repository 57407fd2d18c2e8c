"""Customers ask to return shipped lines from their order's link (issue 11): a return with
source "customer", requested, through the use case staff use; the key is the authority (a
wrong one is a 404); a refusal is a readable message on the page and nothing changes."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from shopkeeper.audit.models import AuditEntry
from shopkeeper.fulfilment.services import ship_order
from shopkeeper.orders.links import order_key, order_link
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.returns.models import Return
from shopkeeper.returns.rules import ReturnLineRequest
from shopkeeper.returns.services import request_return
from tests.factories import paid_order, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def shipped(fake_gateway):
    """Two mugs shipped, the cap not yet."""
    order = paid_order(fake_gateway, items={"MUG": 2, "CAP": 1}, price="10.00")
    ship_order(order_number=order.number, actor=None, actor_label="tests", lines={"MUG": 2})
    return order


def line_id(order, sku: str) -> int:
    return order.lines.get(sku=sku).pk


def ask(client: Client, order, lines: dict[str, tuple[int, str]], *, key=None, note=""):
    body = {"key": order_key(order.number) if key is None else key, "note": note}
    for sku, (quantity, reason) in lines.items():
        body[f"quantity_{line_id(order, sku)}"] = str(quantity)
        body[f"reason_{line_id(order, sku)}"] = reason
    return client.post(f"/orders/{order.number}/returns", body)


def test_the_page_offers_shipped_lines_only_up_to_what_is_returnable(shipped):
    page = Client().get(order_link(shipped.number)).content.decode()

    assert 'data-testid="return-form"' in page
    assert f'name="quantity_{line_id(shipped, "MUG")}"' in page
    assert re.search(rf'name="quantity_{line_id(shipped, "MUG")}"[^>]*max="2"', page)
    assert f'name="quantity_{line_id(shipped, "CAP")}"' not in page  # not shipped


def test_given_nothing_shipped_then_no_form(fake_gateway):
    order = paid_order(fake_gateway)

    page = Client().get(order_link(order.number)).content.decode()

    assert 'data-testid="return-form"' not in page


def test_given_the_right_key_when_the_customer_asks_then_a_customer_return_is_requested(shipped):
    client = Client(enforce_csrf_checks=True)
    client.get(order_link(shipped.number))  # the page sets Django's CSRF cookie
    body = {
        "key": order_key(shipped.number),
        "csrfmiddlewaretoken": client.cookies["csrftoken"].value,
        f"quantity_{line_id(shipped, 'MUG')}": "1",
        f"reason_{line_id(shipped, 'MUG')}": "damaged",
        f"quantity_{line_id(shipped, 'CAP')}": "",
        "note": "the handle came off",
    }

    response = client.post(f"/orders/{shipped.number}/returns", body)

    assert response.status_code == 302 and response["Location"] == order_link(shipped.number)
    returned = Return.objects.get()
    assert (returned.source, returned.status, returned.note) == (
        "customer",
        "requested",
        "the handle came off",
    )
    assert returned.requested_by is None
    assert [(x.order_line.sku, x.quantity, x.reason) for x in returned.lines.all()] == [
        ("MUG", 1, "damaged")
    ]
    entry = AuditEntry.objects.get(action="order.return.requested")
    assert (entry.actor_id, entry.actor_email) == (None, "Customer")
    page = client.get(response["Location"]).content.decode()
    assert "Your return request is sent" in page
    assert f'data-return="{returned.pk}" data-return-status="requested"' in page
    assert "1 \u00d7 MUG (it arrived damaged)" in page
    # One mug is left to ask back.
    assert re.search(rf'name="quantity_{line_id(shipped, "MUG")}"[^>]*max="1"', page)


def test_without_the_csrf_token_the_post_is_refused(shipped):
    client = Client(enforce_csrf_checks=True)

    response = ask(client, shipped, {"MUG": (1, "damaged")})

    assert response.status_code == 403
    assert not Return.objects.exists()


@pytest.mark.parametrize("key", ["", "nope", None])
def test_given_a_wrong_key_then_404_and_nothing_changes(fake_gateway, shipped, key):
    other = paid_order(fake_gateway)
    wrong = order_key(other.number) if key is None else key

    response = ask(Client(), shipped, {"MUG": (1, "damaged")}, key=wrong)

    assert response.status_code == 404
    assert not Return.objects.exists()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ({"MUG": (3, "damaged")}, "3 of MUG asked, 2 returnable"),
        ({"CAP": (1, "damaged")}, "1 of CAP asked, 0 returnable"),  # not shipped
        ({"MUG": (0, "")}, "Name at least one line to return"),
    ],
)
def test_given_more_than_returnable_then_422_with_the_staff_rule_on_the_page(
    shipped, lines, message
):
    response = ask(Client(), shipped, lines)

    assert response.status_code == 422
    page = response.content.decode()
    assert 'data-testid="return-error"' in page and message in page
    assert not Return.objects.exists()
    assert not AuditEntry.objects.filter(action="order.return.requested").exists()


def test_given_units_held_by_a_staff_return_then_the_customer_may_ask_only_the_rest(shipped):
    request_return(
        order_number=shipped.number,
        lines=[ReturnLineRequest("MUG", 1, "wrong_item")],
        actor=staff("support"),
    )

    refused = ask(Client(), shipped, {"MUG": (2, "damaged")})
    accepted = ask(Client(), shipped, {"MUG": (1, "damaged")})

    assert refused.status_code == 422 and "2 of MUG asked, 1 returnable" in refused.content.decode()
    assert accepted.status_code == 302
    assert sorted(Return.objects.values_list("source", flat=True)) == ["customer", "staff"]
    page = Client().get(order_link(shipped.number)).content.decode()
    assert 'data-testid="return-form"' not in page  # both mugs are in returns now
    lines = {line["sku"]: line for line in order_detail(shipped)["lines"]}
    assert (lines["MUG"]["returnable_quantity"], lines["CAP"]["returnable_quantity"]) == (0, 0)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ({"MUG": (1, "")}, "Choose why you send it back."),
        ({"MUG": (1, "meh")}, "Select a valid choice"),
        ({"MUG": (-1, "damaged")}, "greater than or equal to 0"),
    ],
)
def test_given_a_malformed_request_then_a_readable_422(shipped, lines, message):
    response = ask(Client(), shipped, lines)

    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Return.objects.exists()
