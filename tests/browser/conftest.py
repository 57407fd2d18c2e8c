"""Browser tier: Playwright driving Debian's Chromium against pytest-django's live server.

Playwright's sync API runs an event loop in the test thread, which makes Django refuse ORM calls
made there (SynchronousOnlyOperation) although they are plain synchronous code; the tests' own
setup and assertions need them, so the check is switched off for this tier.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium(chromium_path: Path) -> Iterator[object]:
    """One headless Chromium for the session; each test opens its own context."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def sign_in(chromium: Any, live_server: Any) -> Iterator[Callable[[str], Any]]:
    """`sign_in("support")`: a new browser context signed in through the login form; at the
    end, no page may have logged a Content-Security-Policy violation."""
    from playwright.sync_api import expect

    from tests.browser.csp_watch import watch_csp_violations
    from tests.browser.staff_pages import shot
    from tests.factories import PASSWORD, staff

    contexts, violations = [], []

    def open_as(role: str) -> Any:
        user = staff(role, password=PASSWORD)
        context = chromium.new_context(
            base_url=live_server.url, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        violations.append(watch_csp_violations(page))
        page.goto("/admin/")
        shot(page, "login")
        page.get_by_label("E-mail").fill(user.email)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_test_id("whoami")).to_contain_text(user.email)
        return page

    yield open_as
    for context in contexts:
        context.close()
    blocked = [message for page_violations in violations for message in page_violations]
    assert blocked == [], f"Content-Security-Policy violations: {blocked}"


@pytest.fixture
def shop(
    live_server: Any, localstripe_url: str, localstripe_gateway: object, background_worker: None
) -> str:
    """A mug in stock on a live storefront paying through localstripe, whose webhooks reach the
    live server, with a worker running beside it."""
    from django.conf import settings

    from shopkeeper.catalog.services import create_product
    from shopkeeper.demo.localstripe_server import register_webhook

    register_webhook(
        localstripe_url,
        url=f"{live_server.url}/webhooks/stripe",
        secret=settings.STRIPE_WEBHOOK_SECRET,
    )
    create_product(sku="MUG", name="Enamel mug", price="12.50", currency="USD", stock=5)
    return str(live_server.url)
