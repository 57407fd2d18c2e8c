"""The back-office orders list: filters, search and keyset pages, via the API's selector."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from shopkeeper.backoffice import panel
from tests.factories import new_order, paid_order, staff

pytestmark = pytest.mark.django_db


def numbers_on(html: str) -> list[str]:
    return re.findall(r'<tr data-order="([^"]+)"', html)


def test_given_orders_when_listed_then_newest_first_with_badges(viewer, fake_gateway):
    older = paid_order(fake_gateway, price="10.50", email="old@example.com")
    newer = new_order(fake_gateway, price="10.50", email="new@example.com")
    html = viewer.get("/admin/orders").content.decode()
    assert numbers_on(html) == [newer.number, older.number]
    assert 'data-payment-status="paid"' in html and 'data-payment-status="pending"' in html


def test_given_filters_when_listing_then_only_matching_orders(viewer, fake_gateway):
    paid = paid_order(fake_gateway, price="10.50", email="paid@example.com")
    unpaid = new_order(fake_gateway, price="10.50", email="unpaid@example.com")
    assert numbers_on(viewer.get("/admin/orders?payment_status=paid").content.decode()) == [
        paid.number
    ]
    assert numbers_on(viewer.get("/admin/orders?status=pending").content.decode()) == [
        unpaid.number
    ]
    assert numbers_on(viewer.get("/admin/orders?q=UNPAID@").content.decode()) == [unpaid.number]
    assert numbers_on(viewer.get(f"/admin/orders?q={paid.number[-4:]}").content.decode()) == [
        paid.number
    ]


def test_given_more_orders_than_a_page_when_following_next_then_the_rest_without_repeats(
    viewer, fake_gateway, monkeypatch
):
    monkeypatch.setattr(panel, "PAGE_SIZE", 2)
    made = [paid_order(fake_gateway, price="10.50", email=f"c{i}@example.com") for i in range(3)]
    first = viewer.get("/admin/orders?payment_status=paid").content.decode()
    assert numbers_on(first) == [made[2].number, made[1].number]
    next_link = re.search(r'href="\?([^"]+)" rel="next"', first)
    assert next_link is not None and "payment_status=paid" in next_link.group(1)
    second = viewer.get("/admin/orders?" + next_link.group(1).replace("&amp;", "&"))
    html = second.content.decode()
    assert numbers_on(html) == [made[0].number]
    assert 'rel="next"' not in html
    assert "First page" in html


def test_given_a_forged_cursor_when_listing_then_a_readable_422_page(viewer):
    response = viewer.get("/admin/orders?cursor=not-a-cursor")
    assert response.status_code == 422
    assert b"cursor" in response.content


def test_given_refund_awaiting_approval_then_approvers_see_it_above_the_list(fake_gateway):
    order = paid_order(fake_gateway, price="10.50", items={"MUG": 10})
    support = staff("support")
    asker = Client()
    asker.force_login(support)
    asker.post(
        f"/api/admin/orders/{order.number}/refunds",
        {"amount": "110.00", "reason": "duplicate"},
        content_type="application/json",
    )
    manager = Client()
    manager.force_login(staff("manager"))
    html = manager.get("/admin/orders").content.decode()
    assert 'data-testid="approval-queue"' in html
    assert f'href="/admin/orders/{order.number}"' in html and "110.00 USD" in html
    assert 'data-testid="approval-queue"' not in asker.get("/admin/orders").content.decode()
