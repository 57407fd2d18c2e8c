"""What the back-office browser tests share: screenshots on request, opening an order.

Set SHOPKEEPER_SCREENSHOTS=/some/dir to keep screenshots of the pages and dialogs.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page, expect

from shopkeeper.orders.models import Order

SHOTS = os.environ.get("SHOPKEEPER_SCREENSHOTS")


def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def open_order(page: Page, order: Order) -> None:
    page.goto(f"/admin/orders/{order.number}")
    expect(page.locator("#order-panel")).to_be_visible()
