"""Every HTML page carries a Content-Security-Policy without inline script (issue 7, item 11).

The pages are found from the URLconf and opened by one browser session that is both signed in
as the owner and the customer who placed an order, so each page renders its real content. Each
HTML answer must carry the policy, and its markup must need no inline script, style attribute
or event handler (the policy would block them). HSTS in production is proven through a TLS
proxy in test_behind_tls_proxy.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from shopkeeper.orders.models import Order
from tests.factories import new_order, staff

pytestmark = pytest.mark.django_db

# Inline code a strict policy blocks: a <script> with a body that is not JSON data, a style
# attribute or element, an on...= handler, a javascript: URL.
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>\s*\S", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle\s*=", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
JAVASCRIPT_URL = re.compile(r"(?:href|src|action)\s*=\s*[\"']?\s*javascript:", re.I)
# Pages the walk must reach (so that it cannot pass by testing nothing).
EXPECTED_PAGES = {
    "",
    "cart",
    "checkout",
    "checkout/pay/<str:number>",
    "admin/",
    "admin/login/",
    "admin/orders",
    "admin/orders/<str:number>",
    "api/docs",
}


def url_patterns(patterns: Any = None, prefix: str = "") -> list[str]:
    found = []
    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            found += url_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append(prefix + str(pattern.pattern))
    return found


def owner_and_customer(fake_gateway: Any, settings: Any) -> tuple[Client, Order]:
    """One browser: it put a mug in its cart and checked out, then signed in as the owner."""
    new_order(fake_gateway, price="10.50")  # stocks the MUG product
    client = Client()
    client.post("/cart/add", {"sku": "MUG", "quantity": "1"})
    address = {"name": "Ada", "line1": "1 Main St", "city": "Springfield"}
    response = client.post(
        "/checkout",
        {"email": "ada@example.com", **address, "postal_code": "12345", "country": "US"},
    )
    assert response.status_code == 302, response.content[:500]
    order = Order.objects.get(number=response["Location"].rsplit("/", 1)[-1])
    client.force_login(staff("owner"))
    return client, order


def html_answers(client: Client, order: Order) -> dict[str, Any]:
    """GET every route of the URLconf; the HTML answers by route."""
    answers = {}
    for route in url_patterns():
        path = "/" + re.sub(r"<(?:\w+:)?(\w+)>", lambda m: order.number, route)
        response = client.get(path, secure=True)
        if response["Content-Type"].startswith("text/html"):
            answers[route] = response
    answers["(not found)"] = client.get("/no-such-page", secure=True)
    answers["(csrf refused)"] = Client(enforce_csrf_checks=True).post("/admin/login/", secure=True)
    return answers


def policy_of(response: Any) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in directives}


def test_given_every_page_when_opened_then_html_carries_a_csp_without_inline_script(
    fake_gateway, settings
):
    client, order = owner_and_customer(fake_gateway, settings)

    answers = html_answers(client, order)

    assert set(answers) >= EXPECTED_PAGES, sorted(set(answers))
    for route, response in answers.items():
        policy = policy_of(response)
        assert policy, f"/{route}: no Content-Security-Policy"
        assert policy["script-src"][0] == "'self'", route
        assert "'unsafe-inline'" not in policy["script-src"] + policy["style-src"], route
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        html = response.content.decode()
        for inline in (INLINE_SCRIPT, INLINE_STYLE, HANDLER, JAVASCRIPT_URL):
            assert not inline.search(html), f"/{route}: {inline.search(html)}"


def test_given_the_pay_page_then_its_policy_allows_stripe_js_and_nothing_inline(
    fake_gateway, settings
):
    client, order = owner_and_customer(fake_gateway, settings)

    policy = policy_of(client.get(f"/checkout/pay/{order.number}"))

    assert "https://js.stripe.com" in policy["script-src"]
    assert {"https://js.stripe.com", "https://hooks.stripe.com"} <= set(policy["frame-src"])
    assert "https://api.stripe.com" in policy["connect-src"]


def test_given_an_emulator_when_paying_offline_then_its_origin_is_allowed(fake_gateway, settings):
    client, order = owner_and_customer(fake_gateway, settings)
    settings.STRIPE_API_BASE = "http://127.0.0.1:8420"

    policy = policy_of(client.get(f"/checkout/pay/{order.number}"))

    for directive in ("script-src", "connect-src", "frame-src"):
        assert "http://127.0.0.1:8420" in policy[directive]


def test_given_development_when_answering_over_https_then_no_hsts(fake_gateway, settings):
    response = Client().get("/admin/login/", secure=True)

    assert "Strict-Transport-Security" not in response.headers
