"""The storefront pages through the Django test client, with the fake gateway as Stripe."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from shopkeeper.catalog.models import Product
from shopkeeper.catalog.services import create_product
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import Payment
from tests.factories import address
from tests.fakes import FakeGateway

pytestmark = pytest.mark.django_db

ADDRESS = address(
    email="ada@example.com",
    name="Ada Lovelace",
    line1="12 Analytical Row",
    city="London",
    postal_code="N1 9GU",
    country="gb",
)
EMULATOR = "http://127.0.0.1:8420"


@pytest.fixture
def mug() -> Product:
    return create_product(sku="MUG", name="Mug", price="12.50", currency="USD", stock=3)


@pytest.fixture
def shopper() -> Client:
    return Client()


def add(client: Client, sku: str, quantity: int = 1):
    return client.post("/cart/add", {"sku": sku, "quantity": quantity}, follow=True)


def check_out(client: Client, **fields: str):
    return client.post("/checkout", {**ADDRESS, **fields})


def messages_of(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def place(client: Client, sku: str = "MUG", quantity: int = 2) -> Order:
    add(client, sku, quantity)
    response = check_out(client)
    assert response.status_code == 302, response.content
    return Order.objects.get(number=response["Location"].rsplit("/", 1)[-1])


def complete_url(payment: Payment, secret: str | None = None) -> str:
    secret = payment.client_secret if secret is None else secret
    return (
        f"/checkout/complete?payment_intent={payment.intent_id}"
        f"&payment_intent_client_secret={secret}"
    )


# --- Products and cart ---------------------------------------------------------------------


def test_given_products_when_listing_then_active_ones_show_price_and_stock_state(shopper):
    create_product(sku="MUG", name="Mug", price="12.50", currency="USD", stock=3)
    create_product(sku="TEA", name="Tea", price="1500", currency="JPY", stock=0)
    create_product(sku="OLD", name="Old thing", price="1.00", currency="USD", stock=9)
    Product.objects.filter(sku="OLD").update(active=False)

    page = shopper.get("/").content.decode()

    assert "12.50 USD" in page and "Only 3 left" in page
    assert "1500 JPY" in page and "Out of stock" in page
    assert "Old thing" not in page


def test_given_a_product_when_added_twice_then_the_cart_holds_the_sum(shopper, mug):
    response = add(shopper, "MUG", 1)
    assert "Added 1 of Mug to your cart." in messages_of(response)
    add(shopper, "MUG", 1)

    page = shopper.get("/cart")

    assert [(line.product.sku, line.quantity) for line in page.context["cart"].lines] == [
        ("MUG", 2)
    ]
    assert "25.00 USD" in page.content.decode()


def test_given_3_in_stock_when_adding_4_then_a_readable_error_and_the_cart_is_unchanged(
    shopper, mug
):
    add(shopper, "MUG", 2)

    response = add(shopper, "MUG", 2)

    assert "Only 3 of Mug left in stock" in messages_of(response)
    assert shopper.session["cart"] == {"MUG": 2}


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"sku": "NOPE", "quantity": 1}, "Unknown product 'NOPE'"),
        ({"sku": "MUG", "quantity": 0}, "Quantity: Ensure this value is greater than or equal"),
        ({"sku": "MUG", "quantity": "two"}, "Quantity: Enter a whole number."),
    ],
)
def test_given_bad_input_when_adding_then_the_error_is_shown_and_nothing_added(
    shopper, mug, form, message
):
    response = shopper.post("/cart/add", form, follow=True)

    assert any(m.startswith(message) for m in messages_of(response)), messages_of(response)
    assert not shopper.session.get("cart")


def test_given_a_cart_line_when_its_quantity_changes_then_the_total_follows(shopper, mug):
    add(shopper, "MUG", 1)

    response = shopper.post("/cart/update", {"sku": "MUG", "quantity": 3}, follow=True)

    assert "Your cart was updated." in messages_of(response)
    assert "37.50 USD" in response.content.decode()
    assert shopper.session["cart"] == {"MUG": 3}


def test_given_a_cart_line_when_set_above_stock_then_refused_and_unchanged(shopper, mug):
    add(shopper, "MUG", 1)

    response = shopper.post("/cart/update", {"sku": "MUG", "quantity": 4}, follow=True)

    assert "Only 3 of Mug left in stock" in messages_of(response)
    assert shopper.session["cart"] == {"MUG": 1}


@pytest.mark.parametrize(
    ("url", "form"),
    [("/cart/update", {"sku": "MUG", "quantity": 0}), ("/cart/remove", {"sku": "MUG"})],
)
def test_given_a_cart_line_when_removed_then_the_cart_is_empty(shopper, mug, url, form):
    add(shopper, "MUG", 2)

    response = shopper.post(url, form, follow=True)

    assert shopper.session["cart"] == {}
    assert "Your cart is empty." in response.content.decode()


def test_given_a_cart_when_posting_without_csrf_token_then_refused(mug):
    strict = Client(enforce_csrf_checks=True)
    strict.get("/")

    response = strict.post("/cart/add", {"sku": "MUG", "quantity": 1})

    assert response.status_code == 403
    assert not strict.session.get("cart")


def test_given_a_product_withdrawn_after_adding_when_viewing_the_cart_then_it_is_dropped(
    shopper, mug
):
    add(shopper, "MUG", 1)
    Product.objects.filter(sku="MUG").update(active=False)

    response = shopper.get("/cart")

    assert "MUG is no longer sold and was removed from your cart." in messages_of(response)
    assert shopper.session["cart"] == {}


# --- Checkout ------------------------------------------------------------------------------


def test_given_an_empty_cart_when_checking_out_then_an_error_and_nothing_created(
    shopper, fake_gateway
):
    response = check_out(shopper)

    assert response.status_code == 422
    assert "The basket is empty" in response.content.decode()
    assert Order.objects.count() == 0 and fake_gateway.calls == []


def test_given_stock_sold_meanwhile_when_checking_out_then_a_readable_error_nothing_changes(
    shopper, mug, fake_gateway
):
    add(shopper, "MUG", 3)
    Product.objects.filter(sku="MUG").update(stock=1)

    response = check_out(shopper)

    assert response.status_code == 409
    assert "Only 1 of MUG left" in response.content.decode()
    assert Order.objects.count() == 0 and fake_gateway.calls == []
    assert Product.objects.get(sku="MUG").stock == 1
    assert shopper.session["cart"] == {"MUG": 3}


def test_given_mixed_currencies_when_checking_out_then_a_readable_error_nothing_created(
    shopper, mug, fake_gateway
):
    create_product(sku="TEA", name="Tea", price="1500", currency="JPY", stock=5)
    add(shopper, "MUG", 1)
    add(shopper, "TEA", 1)

    response = check_out(shopper)

    assert response.status_code == 422
    assert "All items of one order must share one currency" in response.content.decode()
    assert Order.objects.count() == 0 and fake_gateway.calls == []
    assert Product.objects.get(sku="MUG").stock == 3


def test_given_a_bad_address_when_checking_out_then_field_errors_and_nothing_created(shopper, mug):
    add(shopper, "MUG", 1)

    response = check_out(shopper, country="Britain", email="not-an-email")

    assert response.status_code == 422
    page = response.content.decode()
    assert "Enter a two-letter country code" in page and "Enter a valid email address." in page
    assert Order.objects.count() == 0


def test_given_the_payment_provider_is_down_when_checking_out_then_told_and_stock_returned(
    shopper, mug, fake_gateway
):
    from shopkeeper.errors import PaymentOutcomeUnknown

    fake_gateway.fail_next["create_payment_intent"] = [PaymentOutcomeUnknown("timeout")]
    add(shopper, "MUG", 2)

    response = check_out(shopper)

    assert response.status_code == 503
    assert "We could not reach the payment provider, so no order was placed." in (
        response.content.decode()
    )
    assert Product.objects.get(sku="MUG").stock == 3
    assert shopper.session["cart"] == {"MUG": 2}


def test_given_a_cart_when_checking_out_then_the_order_is_placed_and_the_pay_page_follows(
    shopper, mug
):
    order = place(shopper, quantity=2)

    assert order.grand_total_minor == 2 * 1250 + 500
    assert order.shipping_address["country"] == "GB"
    assert Product.objects.get(sku="MUG").stock == 1
    page = shopper.get(f"/checkout/pay/{order.number}")
    assert page.status_code == 200
    assert "30.00 USD" in page.content.decode()
    # The cart is kept until the order is paid.
    assert shopper.session["cart"] == {"MUG": 2}


# --- Payment page ------------------------------------------------------------------------


def test_given_someone_elses_order_when_opening_its_pay_page_then_404(shopper, mug):
    order = place(shopper)

    assert Client().get(f"/checkout/pay/{order.number}").status_code == 404
    assert shopper.get("/checkout/pay/SK-NOSUCH1").status_code == 404


def test_given_offline_mode_when_paying_then_localstripe_js_and_the_card_element_path(
    shopper, mug, settings
):
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)
    payment = Payment.objects.get(order=order)

    page = shopper.get(f"/checkout/pay/{order.number}")

    config = page.context["payment_config"]
    assert f'src="{EMULATOR}/js.stripe.com/v3/"' in page.content.decode()
    assert config["mode"] == "card"
    assert config["clientSecret"] == payment.client_secret
    assert config["publishableKey"] == settings.STRIPE_PUBLISHABLE_KEY


def test_given_real_stripe_when_paying_then_stripe_js_and_the_payment_element_path(
    shopper, mug, settings
):
    settings.STRIPE_API_BASE = None
    order = place(shopper)

    page = shopper.get(f"/checkout/pay/{order.number}")

    assert 'src="https://js.stripe.com/v3/"' in page.content.decode()
    assert page.context["payment_config"]["mode"] == "payment"
    assert page.context["payment_config"]["returnUrl"] == "http://testserver/checkout/complete"


@pytest.mark.parametrize("offline", [True, False])
def test_given_any_mode_when_rendering_every_page_then_the_secret_key_never_appears(
    shopper, mug, fake_gateway, settings, offline
):
    settings.STRIPE_API_BASE = EMULATOR if offline else None
    settings.STRIPE_SECRET_KEY = "sk_test_must_never_leak_0123456789"
    add(shopper, "MUG", 1)
    pages = [shopper.get("/"), shopper.get("/cart"), shopper.get("/checkout")]
    order = place(shopper)
    payment = Payment.objects.get(order=order)
    pages.append(shopper.get(f"/checkout/pay/{order.number}"))
    fake_gateway.pay(payment.intent_id)
    pages.append(shopper.get(complete_url(payment)))

    for page in pages:
        assert page.status_code == 200
        assert "sk_test_must_never_leak" not in page.content.decode()


def test_given_a_paid_order_when_opening_the_pay_page_then_sent_to_the_confirmation(
    shopper, mug, fake_gateway
):
    order = place(shopper)
    payment = Payment.objects.get(order=order)
    fake_gateway.pay(payment.intent_id)
    shopper.get(complete_url(payment))

    response = shopper.get(f"/checkout/pay/{order.number}")

    assert response.status_code == 302
    assert response["Location"] == complete_url(payment)


# --- Offline confirmation endpoint -----------------------------------------------------


def confirm(client: Client, order: Order, payment_method: str):
    return client.post(f"/checkout/pay/{order.number}/confirm", {"payment_method": payment_method})


def test_given_a_declined_card_when_paying_then_the_reason_and_a_retry_pays_the_same_order(
    shopper, mug, settings
):
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)

    declined = confirm(shopper, order, "pm_card_chargeCustomerFail")

    assert declined.status_code == 402
    assert declined.json()["detail"] == "Your card was declined."
    order.refresh_from_db()
    assert order.payment_status == "failed"
    retry_page = shopper.get(f"/checkout/pay/{order.number}")
    assert "Your last attempt did not go through: Card declined" in retry_page.content.decode()

    paid = confirm(shopper, order, "pm_card_visa")

    assert paid.status_code == 200
    body = paid.json()
    assert body["status"] == "succeeded"
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("processing", "paid")
    assert Order.objects.count() == 1 and Product.objects.get(sku="MUG").stock == 1
    confirmation = shopper.get(body["complete_url"])
    assert confirmation.context["order"]["payment_status"] == "paid"
    assert shopper.session["cart"] == {}


def test_given_a_declined_attempt_when_retrying_then_the_old_payment_intent_is_cancelled_first(
    shopper, mug, settings, fake_gateway
):
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)
    confirm(shopper, order, "pm_card_chargeCustomerFail")
    first = order.payments.get().intent_id

    confirm(shopper, order, "pm_card_visa")

    assert fake_gateway.intents[first].status == "canceled"  # nobody can pay it any more
    assert order.payments.count() == 2
    order.refresh_from_db()
    assert order.payment_status == "paid"


def test_given_stripe_refuses_to_cancel_the_old_intent_when_retrying_then_no_second_intent(
    shopper, mug, settings, fake_gateway
):
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)
    confirm(shopper, order, "pm_card_chargeCustomerFail")
    fake_gateway.fail_next["cancel_payment_intent"] = [PaymentOutcomeUnknown("timeout")]

    refused = confirm(shopper, order, "pm_card_visa")

    assert refused.status_code >= 500
    assert order.payments.count() == 1


def test_given_a_paid_order_when_confirming_again_then_409_and_no_second_charge(
    shopper, mug, settings, fake_gateway
):
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)
    confirm(shopper, order, "pm_card_visa")

    again = confirm(shopper, order, "pm_card_visa")

    assert again.status_code == 409
    assert again.json()["code"] == "order_not_payable"
    assert [op for op, _ in fake_gateway.calls].count("confirm_payment_intent") == 1


def test_given_paid_at_stripe_but_not_yet_recorded_when_confirming_then_recorded_not_recharged(
    shopper, mug, settings, fake_gateway
):
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)
    fake_gateway.pay(Payment.objects.get(order=order).intent_id)  # e.g. paid from another tab

    response = confirm(shopper, order, "pm_card_visa")

    assert response.status_code == 409
    assert response.json()["code"] == "order_not_payable"
    order.refresh_from_db()
    assert order.payment_status == "paid"
    assert Payment.objects.filter(order=order).count() == 1
    assert "confirm_payment_intent" not in [op for op, _ in fake_gateway.calls]


def test_given_real_stripe_when_confirming_on_the_server_then_404(shopper, mug, settings):
    settings.STRIPE_API_BASE = None
    order = place(shopper)

    assert confirm(shopper, order, "pm_card_visa").status_code == 404


def test_given_someone_elses_order_when_confirming_then_404(shopper, mug, settings):
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)

    assert confirm(Client(), order, "pm_card_visa").status_code == 404
    order.refresh_from_db()
    assert order.payment_status == "pending"


def test_given_a_garbled_payment_method_when_confirming_then_422(shopper, mug, settings):
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)

    response = confirm(shopper, order, "'; drop table")

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"


# --- Confirmation page -------------------------------------------------------------------


def test_given_a_paid_intent_when_returning_then_the_order_shows_paid_and_the_cart_empties(
    shopper, mug, fake_gateway
):
    order = place(shopper)
    payment = Payment.objects.get(order=order)
    fake_gateway.pay(payment.intent_id)

    page = shopper.get(complete_url(payment))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Payment received" in html and order.number in html and "30.00 USD" in html
    assert 'data-payment-status="paid"' in html
    assert Order.objects.get(pk=order.pk).payment_status == "paid"
    assert shopper.session["cart"] == {}


def test_given_manual_capture_when_returning_then_authorised_and_the_cart_empties(
    shopper, mug, fake_gateway, settings
):
    settings.SHOPKEEPER_CAPTURE = "manual"
    order = place(shopper)
    payment = Payment.objects.get(order=order)
    fake_gateway.pay(payment.intent_id)

    page = shopper.get(complete_url(payment))

    assert "Payment authorised" in page.content.decode()
    assert Order.objects.get(pk=order.pk).payment_status == "authorized"
    assert shopper.session["cart"] == {}


@pytest.mark.parametrize(
    ("mode", "before", "after"),
    [
        ("automatic", "charged when you pay", None),
        ("manual", "charged once we confirm your order", "charged once we confirm your order"),
        ("on_fulfillment", "charged when your order ships", "charged when your order ships"),
    ],
)
def test_given_a_capture_mode_then_the_pages_say_when_the_card_is_charged(
    shopper, mug, fake_gateway, settings, mode, before, after
):
    settings.SHOPKEEPER_CAPTURE = mode
    order = place(shopper)
    payment = Payment.objects.get(order=order)

    assert before in shopper.get(f"/checkout/pay/{order.number}").content.decode()
    fake_gateway.pay(payment.intent_id)
    settings.SHOPKEEPER_CAPTURE = "automatic"  # a later change: the order keeps its own mode
    html = shopper.get(complete_url(payment)).content.decode()

    if after is None:
        assert "Payment received" in html
    else:
        assert "Payment authorised" in html and after in html
    assert "ships" not in html or mode == "on_fulfillment"


def test_given_a_declined_intent_when_returning_then_failed_with_a_retry_link_and_cart_kept(
    shopper, mug, fake_gateway
):
    order = place(shopper)
    payment = Payment.objects.get(order=order)
    fake_gateway.pay(payment.intent_id, decline=True)

    page = shopper.get(complete_url(payment))

    html = page.content.decode()
    assert "Payment failed" in html and "Card declined" in html
    assert f'href="/checkout/pay/{order.number}"' in html
    assert shopper.session["cart"] == {"MUG": 2}


def test_given_a_wrong_client_secret_when_returning_then_404_and_stripe_not_asked(
    shopper, mug, fake_gateway
):
    order = place(shopper)
    payment = Payment.objects.get(order=order)
    fake_gateway.pay(payment.intent_id)
    calls_before = list(fake_gateway.calls)

    assert shopper.get(complete_url(payment, secret="pi_x_secret_guess")).status_code == 404
    assert shopper.get("/checkout/complete").status_code == 404
    assert fake_gateway.calls == calls_before
    assert Order.objects.get(pk=order.pk).payment_status == "pending"


def test_given_stripe_unreachable_when_returning_then_a_calm_page_and_nothing_changes(
    shopper, mug, fake_gateway: FakeGateway
):
    from shopkeeper.errors import PaymentOutcomeUnknown

    order = place(shopper)
    payment = Payment.objects.get(order=order)
    fake_gateway.pay(payment.intent_id)
    original = fake_gateway.retrieve_payment_intent

    def unreachable(intent_id: str):
        raise PaymentOutcomeUnknown("Stripe did not answer")

    fake_gateway.retrieve_payment_intent = unreachable  # type: ignore[method-assign]
    try:
        page = shopper.get(complete_url(payment))
    finally:
        fake_gateway.retrieve_payment_intent = original  # type: ignore[method-assign]

    assert page.status_code == 503
    assert "reload this page in a moment" in page.content.decode()
    assert shopper.session["cart"] == {"MUG": 2}


def test_the_complete_page_redirect_target_is_what_the_js_builds(shopper, mug, settings):
    """The server's complete URL and the one pay.js builds carry the same two parameters."""
    settings.STRIPE_API_BASE = EMULATOR
    order = place(shopper)

    body = confirm(shopper, order, "pm_card_visa").json()

    query = parse_qs(urlparse(body["complete_url"]).query)
    assert query == {
        "payment_intent": [body["payment_intent"]],
        "payment_intent_client_secret": [body["client_secret"]],
    }
    assert settings.STRIPE_SECRET_KEY not in str(body)
