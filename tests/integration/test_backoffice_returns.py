"""The back office's returns page (issue 11): returns by status, the requested ones (the queue)
by default, newest first, keyset pages, each row linking to its order; orders.view."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from shopkeeper.fulfilment.services import ship_order
from shopkeeper.returns.rules import ReturnLineRequest
from shopkeeper.returns.services import (
    receive_return,
    refund_return,
    reject_return,
    request_return,
)
from shopkeeper.returns.states import ReturnSource
from tests.factories import paid_order, staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager():
    return staff("manager")


@pytest.fixture
def browser(manager) -> Client:
    client = Client()
    client.force_login(manager)
    return client


@pytest.fixture
def order(fake_gateway, manager):
    placed = paid_order(fake_gateway, items={"MUG": 10}, price="10.00")
    ship_order(order_number=placed.number, actor=manager)
    return placed


def ask(order, actor, *, source=ReturnSource.STAFF, quantity=1, reason="damaged"):
    return request_return(
        order_number=order.number,
        lines=[ReturnLineRequest("MUG", quantity, reason)],
        actor=actor,
        source=source,
        actor_label="" if actor else "Customer",
    )


def shown(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr data-return="(\d+)"', html)]


def test_by_default_the_queue_of_requested_returns_newest_first_with_their_source(
    browser, order, manager
):
    by_staff = ask(order, manager)
    by_customer = ask(order, None, source=ReturnSource.CUSTOMER, reason="wrong_item")
    received = ask(order, manager)
    receive_return(return_id=received.pk, actor=manager)

    response = browser.get("/admin/returns/")

    assert response.status_code == 200
    html = response.content.decode()
    assert shown(html) == [by_customer.pk, by_staff.pk]
    assert f'<tr data-return="{by_customer.pk}" data-source="customer">' in html
    assert f'<tr data-return="{by_staff.pk}" data-source="staff">' in html
    assert f'href="/admin/orders/{order.number}"' in html
    assert "1 \u00d7 MUG (wrong item)" in html
    assert 'aria-current="page">Requested<' in html
    assert 'href="/admin/returns/">Returns</a>' in html  # in the navigation


@pytest.mark.parametrize("status", ["received", "rejected", "refunded"])
def test_a_tab_per_status(browser, order, manager, status):
    ask(order, manager)  # left requested: not on the other tabs
    moved = ask(order, manager)
    if status == "rejected":
        reject_return(return_id=moved.pk, note="not ours", actor=manager)
    else:
        receive_return(return_id=moved.pk, actor=manager)
    if status == "refunded":
        refund_return(return_id=moved.pk, actor=manager)

    html = browser.get("/admin/returns/", {"status": status}).content.decode()

    assert shown(html) == [moved.pk]
    assert f'data-return-status="{status}"' in html
    if status == "refunded":
        assert 'data-refund-status="succeeded"' in html


def test_given_no_return_in_a_status_then_the_page_says_so(browser):
    html = browser.get("/admin/returns/", {"status": "received"}).content.decode()

    assert shown(html) == [] and "No received returns." in html


def test_keyset_pages_keep_the_status_and_show_each_return_once(
    browser, order, manager, monkeypatch
):
    monkeypatch.setattr("shopkeeper.backoffice.returns_list.PAGE_SIZE", 2)
    made = [ask(order, manager).pk for _ in range(5)]
    rejected = ask(order, manager)
    reject_return(return_id=rejected.pk, note="no", actor=manager)

    seen, url, pages = [], "/admin/returns/", 0
    while url:
        html = browser.get(url).content.decode()
        seen += shown(html)
        pages += 1
        found = re.search(r'href="\?([^"]+)" rel="next"', html)
        url = "/admin/returns/?" + found.group(1).replace("&amp;", "&") if found else ""
        if found:
            assert "status=requested" in found.group(1)

    assert seen == made[::-1] and pages == 3


@pytest.mark.parametrize(("query", "code"), [("status=lost", 422), ("cursor=nope", 422)])
def test_a_bad_status_or_cursor_is_a_readable_422(browser, query, code):
    response = browser.get(f"/admin/returns/?{query}")

    assert response.status_code == code
    assert b"<html" in response.content


def test_signed_out_goes_to_sign_in_and_every_role_with_orders_view_reads_it(order):
    assert Client().get("/admin/returns/")["Location"].startswith("/admin/login/")
    for role in ("owner", "manager", "support", "viewer"):
        client = Client()
        client.force_login(staff(role, email=f"{role}@returns.example"))
        assert client.get("/admin/returns/").status_code == 200, role
