"""What the storefront's browser tests share: the offline test cards, buying a mug up to the pay
page, paying on localstripe's card element. The `shop` fixture (tests/browser/conftest.py) stocks
the mug and points localstripe's webhooks at the live server."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000341"  # localstripe declines it when charging


def buy_until_pay_page(page: Page) -> str:
    """Add the mug to the cart, check out with an address; returns the order number."""
    page.goto("/")
    product = page.locator(".product", has_text="Enamel mug")
    expect(product).to_contain_text("12.50 USD")
    product.get_by_label("Qty").fill("2")
    product.get_by_role("button", name="Add to cart").click()
    expect(page.get_by_text("Added 2 of Enamel mug to your cart.")).to_be_visible()
    page.get_by_role("link", name="Cart").click()
    expect(page.locator(".cart-lines")).to_contain_text("25.00 USD")
    page.get_by_role("link", name="Check out").click()
    page.get_by_label("E-mail").fill("ada@example.com")
    page.get_by_label("Full name").fill("Ada Lovelace")
    page.get_by_label("Address").fill("12 Analytical Row")
    page.get_by_label("City").fill("London")
    page.get_by_label("Postal code").fill("N1 9GU")
    page.get_by_label("Country").fill("GB")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page).to_have_url(re.compile(r"/checkout/pay/SK-[0-9A-Z]{8}$"))
    return page.url.rsplit("/", 1)[-1]


def pay_with(page: Page, number: str) -> None:
    """Fill localstripe's card element (plain inputs named by placeholder) and press Pay."""
    card = page.locator("#card-element")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("34")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("12345")
    page.get_by_role("button", name=re.compile(r"^Pay 30\.00 USD$")).click()
