"""The security suite, beyond the API's RBAC matrix in test_security.py (which it extends):

- every back-office page x every role, against the permission table, found from the URLconf;
- cookie sessions without (or with a wrong) CSRF token, on every state-changing admin endpoint,
  the back office's sign-in and sign-out, and the storefront's forms;
- one customer's browser reading another's order (pay page, card confirmation, return page,
  admin API and back office);
- forged, stale and replayed webhooks carrying money news: refused, nothing stored, a log line;
- login throttling over HTTP, without telling which e-mails exist;
- the Stripe secret key: tests/conftest.py watches every response and log record of the whole
  session (tests/secret_watch.py); the watch itself is tested here.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver

from shopkeeper.accounts.models import ApiToken, User
from shopkeeper.accounts.permissions import ROLE_PERMISSIONS, Role
from shopkeeper.backoffice.urls import urlpatterns as backoffice_urls
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.redaction import mask_secrets
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import (
    PASSWORD,
    authorised_order,
    new_order,
    paid_order,
    requested_refund,
    staff,
)
from tests.fakes import intent_event_payload, refund_event_payload, sign_payload
from tests.integration.admin_operations import BODIES, OPERATIONS, concrete
from tests.integration.orders_admin_fixtures import ROLES
from tests.jobs import run_jobs
from tests.secret_watch import SecretWatch

pytestmark = pytest.mark.django_db

CSRF = "a" * 32
# Back-office routes anyone may open: the sign-in form (also at the root) and sign-out.
PUBLIC_PAGES = {"home", "login", "logout"}


def backoffice_pages() -> list[tuple[str, str, str]]:
    """(route name, path template, required permission) of every back-office route."""
    pages = []
    for pattern in backoffice_urls:
        assert isinstance(pattern, URLPattern) and not isinstance(pattern, URLResolver)
        permission = getattr(pattern.callback, "required_permission", None)
        template = "/admin/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(pattern.pattern))
        pages.append((str(pattern.name), template, str(permission or "")))
    return pages


PAGES = backoffice_pages()
GUARDED_PAGES = [page for page in PAGES if page[0] not in PUBLIC_PAGES]


def test_every_back_office_page_but_sign_in_and_out_is_guarded_by_a_permission():
    assert {name for name, _, permission in PAGES if not permission} == PUBLIC_PAGES
    assert len(GUARDED_PAGES) >= 3


@pytest.mark.parametrize("role", [*ROLES, "unknown"])
@pytest.mark.parametrize(("name", "template", "permission"), GUARDED_PAGES)
def test_given_a_role_when_opening_a_back_office_page_then_the_permission_table_decides(
    fake_gateway, settings, role, name, template, permission
):
    order = authorised_order(fake_gateway, price="10.50")
    user = staff(role, email=f"{role}@pages.example")
    client = Client()
    client.force_login(user)
    allowed = role != "unknown" and permission in ROLE_PERMISSIONS[Role(role)]

    response = client.get(template.format(number=order.number))

    if allowed:
        assert response.status_code == 200, response.content[:300]
        assert order.number.encode() in response.content or name in ("orders", "returns")
    else:
        assert response.status_code == 403
        assert order.email.encode() not in response.content


@pytest.mark.parametrize(("name", "template", "permission"), GUARDED_PAGES)
def test_given_no_session_when_opening_a_back_office_page_then_sent_to_sign_in(
    fake_gateway, settings, name, template, permission
):
    order = new_order(fake_gateway, price="10.50")
    response = Client().get(template.format(number=order.number))
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


# --- CSRF -------------------------------------------------------------------------------

STATE_CHANGING = [(method, path) for method, path, _ in OPERATIONS if method != "GET"]


def body_for(path: str) -> dict[str, Any]:
    template = next(t for t in BODIES if re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", t), path))
    return BODIES[template]


@pytest.mark.parametrize("token", ["none", "wrong"])
@pytest.mark.parametrize(("method", "path"), STATE_CHANGING)
def test_given_owner_session_without_valid_csrf_token_when_posting_then_403_nothing_changes(
    fake_gateway, settings, method, path, token
):
    order = authorised_order(fake_gateway, price="10.50")
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff("owner"))
    client.cookies["csrftoken"] = CSRF
    headers = {"HTTP_X_CSRFTOKEN": "b" * 32} if token == "wrong" else {}
    before = (Order.objects.values_list("status", "payment_status").get(pk=order.pk),)

    url = concrete(path, order.number)
    response = client.post(url, body_for(url), content_type="application/json", **headers)

    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "csrf_failed"
    assert (Order.objects.values_list("status", "payment_status").get(pk=order.pk),) == before
    assert not Refund.objects.exists()


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/admin/login/", {"username": "owner@shop.example", "password": "x"}),
        ("/admin/logout/", {}),
        ("/cart/add", {"sku": "MUG", "quantity": "1"}),
        ("/cart/update", {"sku": "MUG", "quantity": "2"}),
        ("/cart/remove", {"sku": "MUG"}),
        ("/checkout", {"email": "ada@example.com"}),
    ],
)
def test_given_no_csrf_token_when_posting_a_form_then_refused(fake_gateway, settings, path, form):
    new_order(fake_gateway, price="10.50")  # a product to name
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff("owner"))

    response = client.post(path, form)

    assert response.status_code == 403
    assert "_auth_user_id" in client.session  # not even signed out


# --- one customer, another's order ------------------------------------------------------


def shopper_with_order(fake_gateway: Any, settings: Any, email: str) -> tuple[Client, Order]:
    """A browser that put a mug in its cart and checked out: the session owns the order."""
    new_order(fake_gateway, price="10.50")  # stocks the MUG product
    client = Client()
    client.post("/cart/add", {"sku": "MUG", "quantity": "1"})
    response = client.post(
        "/checkout",
        {
            "email": email,
            "name": "Ada",
            "line1": "1 Main St",
            "city": "Springfield",
            "postal_code": "12345",
            "country": "US",
        },
    )
    assert response.status_code == 302, response.content[:500]
    order = Order.objects.get(number=response["Location"].rsplit("/", 1)[-1])
    return client, order


def test_given_two_customers_when_one_opens_the_others_order_anywhere_then_404_or_sign_in(
    fake_gateway, settings
):
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # offline mode: the confirm endpoint exists
    alice, alices = shopper_with_order(fake_gateway, settings, "alice@example.com")
    bob, bobs = shopper_with_order(fake_gateway, settings, "bob@example.com")
    payment = alices.payments.get()
    assert bob.get(f"/checkout/pay/{bobs.number}").status_code == 200  # his own: fine

    answers = [
        bob.get(f"/checkout/pay/{alices.number}"),
        bob.post(f"/checkout/pay/{alices.number}/confirm", {"payment_method": "pm_card_visa"}),
        bob.get(f"/checkout/complete?payment_intent={payment.intent_id}"),
        bob.get(
            f"/checkout/complete?payment_intent={payment.intent_id}"
            f"&payment_intent_client_secret={bobs.payments.get().client_secret}"
        ),
    ]

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    for answer in answers:
        assert b"alice@example.com" not in answer.content
        assert payment.client_secret.encode() not in answer.content
    assert bob.get(f"/api/admin/orders/{alices.number}").status_code == 401
    assert bob.get(f"/admin/orders/{alices.number}").status_code == 302  # to staff sign-in
    assert Order.objects.get(pk=alices.pk).payment_status == "pending"
    assert not any(call[0] == "confirm_payment_intent" for call in fake_gateway.calls)
    assert alice.get(f"/checkout/pay/{alices.number}").status_code == 200


# --- forged, stale and replayed webhooks ------------------------------------------------

FORGERIES = {
    "unsigned": lambda payload: None,
    "someone else's secret": lambda payload: sign_payload(payload, secret="whsec_attacker"),
    "stale by 301 s": lambda payload: sign_payload(payload, timestamp=int(time.time()) - 301),
    "signature of another body": lambda payload: sign_payload(payload.replace(b"2", b"3")),
    "no v1 scheme": lambda payload: sign_payload(payload).replace("v1=", "v0="),
}


def post_webhook(payload: bytes, signature: str | None) -> Any:
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    return Client(enforce_csrf_checks=True).post(
        "/webhooks/stripe", payload, content_type="application/json", **headers
    )


@pytest.fixture
def money_news(fake_gateway, settings) -> dict[str, bytes]:
    """Events that would move money if believed: an unpaid order paid, a refund succeeded."""
    unpaid = new_order(fake_gateway, price="10.50")
    paid = paid_order(fake_gateway, price="10.50")
    fake_gateway.refund_status = "pending"
    refund = requested_refund(
        paid,
        actor=staff("manager"),
        amount="1.00",
        reason="requested_by_customer",
    )
    succeeded = fake_gateway.settle_refund(refund.stripe_refund_id, "succeeded")
    return {
        "payment": intent_event_payload(
            fake_gateway.pay(unpaid.payments.get().intent_id), "payment_intent.succeeded", "evt_p"
        ),
        "refund": refund_event_payload(succeeded, "refund.updated", "evt_r"),
    }


def books() -> tuple[Any, ...]:
    return (
        tuple(Order.objects.order_by("id").values_list("payment_status", flat=True)),
        LedgerEntry.objects.count(),
        tuple(Refund.objects.values_list("status", flat=True)),
        WebhookEvent.objects.count(),
    )


@pytest.mark.parametrize("news", ["payment", "refund"])
@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_given_forged_or_stale_money_news_when_delivered_then_400_nothing_stored_a_log_line(
    money_news, caplog, news, forgery
):
    payload = money_news[news]
    before = books()

    with caplog.at_level(logging.WARNING, logger="shopkeeper.stripe_events.views"):
        response = post_webhook(payload, FORGERIES[forgery](payload))

    assert response.status_code == 400 and response.json()["code"] == "invalid_signature"
    assert books() == before
    assert [r.getMessage() for r in caplog.records if "Rejected a Stripe webhook" in r.getMessage()]


def test_given_a_captured_delivery_when_replayed_then_duplicate_within_tolerance_400_after(
    money_news,
):
    payload = money_news["refund"]
    signature = sign_payload(payload, timestamp=int(time.time()) - 200)
    assert post_webhook(payload, signature).json()["status"] == "received"
    assert [run.outcome for run in run_jobs()] == ["succeeded"]
    assert WebhookEvent.objects.get(event_id="evt_r").status == "processed"
    after_first = books()

    replayed = post_webhook(payload, signature)  # an attacker resends what they captured
    assert replayed.status_code == 200 and replayed.json()["status"] == "duplicate"
    assert books() == after_first

    late = sign_payload(payload, timestamp=int(time.time()) - 400)
    assert post_webhook(payload, late).status_code == 400
    assert books() == after_first


def test_given_a_known_event_id_with_other_contents_when_delivered_then_nothing_changes(
    money_news, fake_gateway
):
    """A second body under a known event id (signed: Stripe's own) is still the same event."""
    assert post_webhook(money_news["refund"], sign_payload(money_news["refund"])).status_code == 200
    after_first = books()
    refund = Refund.objects.get()
    failed = fake_gateway.settle_refund(refund.stripe_refund_id, "failed", "unknown")
    other = refund_event_payload(failed, "refund.failed", "evt_r")

    response = post_webhook(other, sign_payload(other))

    assert response.json()["status"] == "duplicate" and books() == after_first


# --- login throttling -------------------------------------------------------------------


@pytest.fixture
def throttled(settings) -> User:
    settings.SHOPKEEPER_LOGIN_MAX_FAILURES = 3
    settings.SHOPKEEPER_LOGIN_THROTTLE_SECONDS = 600
    return staff("support", "staff@example.com", password=PASSWORD)


def sign_in(email: str, password: str, ip: str = "10.0.0.1") -> tuple[int, str, bool]:
    client = Client(REMOTE_ADDR=ip)
    response = client.post("/admin/login/", {"username": email, "password": password})
    text = re.sub(r"\s+", " ", response.content.decode())
    errors = " ".join(re.findall(r'class="[^"]*error[^"]*"[^>]*>(.*?)<', text))
    return response.status_code, errors, "_auth_user_id" in client.session


def test_given_an_unknown_email_or_a_wrong_password_when_signing_in_then_the_same_answer(throttled):
    unknown = sign_in("nobody@example.com", "wrong")
    wrong = sign_in(throttled.email, "wrong", ip="10.0.0.2")
    assert unknown == wrong and not unknown[2]
    assert "correct email" in unknown[1].lower() or "correct e-mail" in unknown[1].lower()


def test_given_failures_from_one_address_then_known_and_unknown_emails_are_locked_alike(throttled):
    for email in ("nobody@example.com", throttled.email):
        for _ in range(3):
            sign_in(email, "wrong")
    locked_known = sign_in(throttled.email, PASSWORD)
    locked_unknown = sign_in("nobody@example.com", "anything")

    assert not locked_known[2] and "Too many failed sign-in attempts" in locked_known[1]
    assert locked_unknown[1] == locked_known[1]  # nothing tells an attacker which one exists
    assert sign_in(throttled.email, PASSWORD, ip="10.0.0.9")[2]  # another address still may


# --- the secret-key watch itself --------------------------------------------------------


def test_given_a_key_in_a_log_record_or_a_response_then_the_secret_watch_sees_it(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_51WatchMeIfYouCan"
    with SecretWatch().watching() as watch:
        # Handed to this watch alone: through the root logger the session's watch would see it.
        for args in (
            ("calling with %s", "sk_live_abcdefgh123"),
            ("Unexpected auth - 'Basic %s'", ApiToken.new_raw_token()),
            ("masked: %s", mask_secrets(ApiToken.new_raw_token())),
            ("nothing to see",),
        ):
            watch.handle(
                logging.LogRecord("t", logging.WARNING, __file__, 1, args[0], args[1:], None)
            )

        class Leaky:
            status_code, streaming, headers = 200, False, {}
            content = b"<p>sk_test_51WatchMeIfYouCan</p>"

        class Request:
            path = "/leak"

        watch.check_response(Request(), Leaky())
        Client().get("/admin/login/")  # a real response passes the hook

    assert len(watch.sightings) == 3 and watch.responses == 2
    assert "sk_live" in watch.sightings[0] and "Unexpected auth" in watch.sightings[1]
    assert "/leak" in watch.sightings[2]
