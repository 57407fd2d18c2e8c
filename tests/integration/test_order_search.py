"""Search in the orders list (`q`): what a term finds, whichever way the page is found (the
newest orders first, the ids of a rarer term's orders, or the list read in order), with and
without the trigram indexes; terms too short to search for; the name the seed gives."""

from __future__ import annotations

import importlib
import io
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from shopkeeper.orders.models import Order
from shopkeeper.orders_view import queries
from shopkeeper.orders_view.selectors import SearchTooShort, list_orders
from tests.factories import staff

pytestmark = pytest.mark.django_db

trigram = importlib.import_module("shopkeeper.orders.migrations.0004_order_search_trigram_indexes")


@pytest.fixture
def seeded() -> list[Order]:
    call_command("seed", orders=240, random_seed=11, stdout=io.StringIO())
    orders = list(Order.objects.order_by("-created_at", "-id"))
    # A name shared by orders old and new, and one only in the oldest: the window finds the
    # first, the look-up of ids the second.
    for order in orders[::9]:
        order.shipping_address["name"] = "Niklaus Allenby"
        order.save(update_fields=["shipping_address"])
    for order in orders[-3:]:
        order.shipping_address["name"] = "Quirinus Vandermeer"
        order.save(update_fields=["shipping_address"])
    return orders


def every_page(limit: int = 5, **filters: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = list_orders(cursor=cursor, limit=limit, **filters)
        seen += [item["number"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def containing(term: str, orders: list[Order], **filters: str) -> list[str]:
    t = term.lower()
    return [
        o.number
        for o in orders
        if all(getattr(o, k) == v for k, v in filters.items())
        and any(t in text.lower() for text in (o.number, o.email, o.shipping_address["name"]))
    ]


def terms(orders: list[Order]) -> dict[str, str]:
    order = orders[len(orders) // 3]
    return {
        "part of a number": order.number[-4:].lower(),
        "part of an e-mail": order.email.split("@")[0][:4].upper(),
        "an e-mail domain": "@" + order.email.split("@")[1],
        "a whole name, other case": "NIKLAUS allenby",
        "part of a name, in many orders": "allen",
        "a name only the oldest orders have": "vandermeer",
        "in nearly every order": "com",
        "nothing": "no-such-order",
        "three letters": order.shipping_address["name"].split()[-1][:3],
    }


@pytest.mark.parametrize(
    ("window_per_row", "few"),
    [(80, 500), (2, 500), (2, 4), (1, 0)],
    ids=["whole list in the window", "window, then ids", "window, then list in order", "tiny"],
)
def test_a_part_finds_every_order_containing_it_whichever_way_the_page_is_found(
    seeded, monkeypatch, window_per_row, few
):
    monkeypatch.setattr(queries, "WINDOW_PER_ROW", window_per_row)
    monkeypatch.setattr(queries, "FEW", few)
    for label, term in terms(seeded).items():
        if len(term) < queries.MIN_PART:
            continue
        expected = containing(term, seeded)
        assert every_page(q=term) == expected, label
        assert every_page(q=term, limit=1) == expected, label
        processing = containing(term, seeded, status="processing")
        assert every_page(q=term, status="processing") == processing, label
    assert len(containing("allen", seeded)) > 20
    assert every_page(q="vandermeer") == [o.number for o in seeded[-3:]]


def test_a_whole_number_or_e_mail_finds_exactly_its_orders_in_any_case(seeded):
    order = seeded[17]
    customer = [o.number for o in seeded if o.email == order.email]

    assert every_page(q=order.number.lower()) == [order.number]
    assert every_page(q=f"  {order.number}  ") == [order.number]
    assert every_page(q=order.email.upper()) == customer


@pytest.mark.parametrize("term", ["a", "SK", " ab ", "%_"])
def test_a_term_shorter_than_three_characters_is_refused(seeded, term):
    with pytest.raises(SearchTooShort):
        list_orders(q=term)


def test_a_blank_term_lists_every_order(seeded):
    assert every_page(limit=100, q="   ") == [o.number for o in seeded]


def test_a_short_term_is_a_422_problem_in_the_api_and_a_readable_page_in_the_back_office():
    client = Client()
    client.force_login(staff("viewer"))

    answer = client.get("/api/admin/orders?q=ab")
    assert answer.status_code == 422
    assert answer["Content-Type"] == "application/problem+json"
    assert answer.json()["code"] == "search_too_short"
    page = client.get("/admin/orders?q=ab")
    assert page.status_code == 422
    assert b"at least 3 characters" in page.content


def test_without_the_trigram_indexes_a_part_finds_the_same_orders(seeded, monkeypatch):
    monkeypatch.setattr(queries, "WINDOW_PER_ROW", 2)
    trigram.drop_trigram_indexes(connection)
    try:
        for label, term in terms(seeded).items():
            if len(term) >= queries.MIN_PART:
                assert every_page(q=term) == containing(term, seeded), label
    finally:
        if trigram.trigram_available(connection):
            trigram.add_trigram_indexes(connection)


def test_the_seed_gives_every_order_a_customer_name_that_search_finds():
    call_command("seed", orders=60, random_seed=3, stdout=io.StringIO())
    names = [o.shipping_address.get("name", "") for o in Order.objects.all()]

    assert all(len(name.split()) >= 2 for name in names), names
    assert len(set(names)) > 10
    name = names[0]
    assert set(containing(name, list(Order.objects.order_by("-created_at", "-id")))) == {
        item["number"] for item in list_orders(q=name, limit=100)["items"]
    }


def test_the_trigram_indexes_are_asked_word_by_word_and_the_window_by_strpos():
    assert queries.index_pieces("grace leroy") == ["grace", "leroy"]
    assert queries.index_pieces("da@example.ne") == ["example"]
    assert queries.index_pieces("a.b_c") == ["a.b_c"]  # no word of 3: the term itself

    asked = str(Order.objects.filter(queries.containing("Grace Leroy")).query)
    assert "LIKE %grace%" in asked and "LIKE %leroy%" in asked, asked
    assert "STRPOS" in asked and "LIKE %grace leroy%" not in asked, asked
    read = str(Order.objects.filter(queries.containing_read("Grace Leroy")).query)
    assert "STRPOS" in read and "LIKE" not in read, read
