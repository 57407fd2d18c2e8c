"""Customer e-mails (issue 11) received by a real SMTP server (aiosmtpd, tests/mail_server.py):
one per event, owed in the event's transaction and sent by the worker's job, with the order's
link, values escaped in HTML; never twice; retried after an SMTP failure; none when staff untick
"notify the customer"."""

from __future__ import annotations

import pytest
from django.conf import settings

from shopkeeper.notifications.models import Notification
from shopkeeper.notifications.sending import send_notification
from shopkeeper.orders.links import order_link
from shopkeeper.orders.services import cancel_order
from shopkeeper.returns.rules import ReturnLineRequest
from shopkeeper.returns.services import receive_return, refund_return, request_return
from tests.factories import address, authorised_order, new_order, paid_order, staff
from tests.integration.orders_admin_fixtures import api_as
from tests.jobs import run_jobs
from tests.mail_server import bodies, smtp_server

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script> & <b>Bob</b>'


@pytest.fixture
def inbox():
    with smtp_server() as received:
        yield received


@pytest.fixture
def manager_api():
    return api_as("manager")


def sent(inbox) -> list[str]:
    run_jobs(emails=True)
    return inbox.subjects()


def link_of(order) -> str:
    return f"{settings.SHOPKEEPER_SITE_URL}{order_link(order.number)}"


def test_given_an_order_placed_and_paid_then_two_mails_with_its_link(fake_gateway, inbox):
    order = paid_order(fake_gateway, items={"MUG": 2}, price="10.00")

    assert sent(inbox) == [
        f"Your order {order.number}",
        f"Payment received for order {order.number}",
    ]
    placed, paid = inbox.to("ada@example.com")
    text, html = bodies(placed)
    assert link_of(order) in text
    assert f'href="{link_of(order)}"' in html.replace("&amp;", "&")
    assert "25.00 USD" in text and "2 x Mug" in text and "Hello Ada," in text
    assert "We received your payment of 25.00 USD" in bodies(paid)[0]
    assert Notification.objects.filter(sent_at__isnull=False).count() == 2


def test_given_an_authorised_order_then_the_payment_mail_says_authorised(fake_gateway, inbox):
    authorised_order(fake_gateway)

    assert len(sent(inbox)) == 2
    assert "Your card is authorised for 25.00 USD" in bodies(inbox.messages[1])[0]
    assert "charged once we confirm your order" in bodies(inbox.messages[1])[0]


def test_given_capture_on_fulfilment_then_the_payment_mail_says_charged_when_it_ships(
    fake_gateway, inbox
):
    new_order(fake_gateway, capture="on_fulfillment", pay=True)

    assert len(sent(inbox)) == 2
    text, html = bodies(inbox.messages[1])
    assert "Your card is authorised for 25.00 USD" in text
    assert "charged when your order ships, for what we send" in text
    assert "charged when your order ships" in html


def test_given_a_shipment_then_its_mail_has_carrier_and_tracking(fake_gateway, inbox, manager_api):
    order = paid_order(fake_gateway)
    run_jobs(emails=True)

    shipped = manager_api.post(
        f"/orders/{order.number}/shipments", {"carrier": "DHL", "tracking_number": "JD0147"}
    )

    assert shipped.status_code == 201, shipped.content
    assert sent(inbox)[-1] == f"Order {order.number} has shipped"
    text, html = bodies(inbox.messages[-1])
    assert "with DHL" in text and "Tracking number: JD0147" in text and link_of(order) in text
    assert "<strong>JD0147</strong>" in html


def test_given_a_refund_through_the_api_then_its_mail_has_amount_and_card(
    fake_gateway, inbox, manager_api
):
    order = paid_order(fake_gateway)
    run_jobs(emails=True)

    response = manager_api.post(
        f"/orders/{order.number}/refunds",
        {"amount": "7.50", "reason": "requested_by_customer"},
        HTTP_IDEMPOTENCY_KEY="mail-refund-1",
    )

    assert response.status_code == 201, response.content
    assert sent(inbox)[-1] == f"A refund for order {order.number}"
    text, _ = bodies(inbox.messages[-1])
    assert "We refunded 7.50 USD" in text
    assert "to your Visa card ending in 4242" in text
    assert link_of(order) in text


def test_given_notify_customer_false_then_a_refund_and_a_cancel_mail_nobody(
    fake_gateway, inbox, manager_api
):
    paid = paid_order(fake_gateway)
    authorised = authorised_order(fake_gateway)
    run_jobs(emails=True)
    before = len(inbox.messages)

    refunded = manager_api.post(
        f"/orders/{paid.number}/refunds",
        {"reason": "requested_by_customer", "notify_customer": False},
        HTTP_IDEMPOTENCY_KEY="quiet-refund",
    )
    cancelled = manager_api.post(
        f"/orders/{authorised.number}/cancel",
        {"reason": "out of stock", "notify_customer": False},
    )

    assert refunded.status_code == 201, refunded.content
    assert cancelled.status_code == 200, cancelled.content
    assert refunded.json()["refund"]["status"] == "succeeded"
    assert sent(inbox) and len(inbox.messages) == before
    assert not Notification.objects.filter(kind__in=["refund_made", "order_cancelled"]).exists()


def test_given_a_cancel_with_notify_customer_then_the_cancelled_mail(
    fake_gateway, inbox, manager_api
):
    order = authorised_order(fake_gateway)

    response = manager_api.post(f"/orders/{order.number}/cancel", {"reason": "out of stock"})

    assert response.status_code == 200, response.content
    assert sent(inbox)[-1] == f"Order {order.number} is cancelled"
    text, _ = bodies(inbox.messages[-1])
    assert "Nothing more will be charged" in text and link_of(order) in text
    assert "out of stock" not in text  # the staff's reason is theirs


def shipped_with_a_return_asked(fake_gateway):
    """Two mugs paid and shipped by the owner, one asked back: the order, the return, the
    manager, the owner's API client."""
    manager = staff("manager")
    order = paid_order(fake_gateway, items={"MUG": 2}, price="10.00")
    api = api_as("owner")
    assert api.post(f"/orders/{order.number}/shipments", {}).status_code == 201
    asked = request_return(
        order_number=order.number,
        lines=[ReturnLineRequest("MUG", 1, "damaged")],
        actor=manager,
    )
    return order, asked, manager, api


def test_given_a_return_received_and_refunded_then_return_mails_and_no_refund_made_mail(
    fake_gateway, inbox
):
    order, asked, manager, _ = shipped_with_a_return_asked(fake_gateway)
    run_jobs(emails=True)
    before = len(inbox.messages)

    receive_return(return_id=asked.pk, actor=manager)
    refund = refund_return(return_id=asked.pk, actor=manager)

    assert refund.status == "succeeded"
    assert sent(inbox)[before:] == [
        f"We received your return for order {order.number}",
        f"Your return for order {order.number} is refunded",
    ]
    received_text, _ = bodies(inbox.messages[before])
    refunded_text, _ = bodies(inbox.messages[before + 1])
    assert "1 x Mug" in received_text and link_of(order) in received_text
    assert "is refunded: 10.00 USD to your Visa card ending in 4242" in refunded_text
    assert not Notification.objects.filter(kind="refund_made").exists()


def test_given_a_return_refund_with_notify_customer_false_then_no_return_refunded_mail(
    fake_gateway, inbox
):
    order, asked, manager, api = shipped_with_a_return_asked(fake_gateway)
    receive_return(return_id=asked.pk, actor=manager)

    response = api.post(
        f"/returns/{asked.pk}/refund",
        {"include_shipping": False, "notify_customer": False},
        HTTP_IDEMPOTENCY_KEY="quiet-return-refund",
    )

    assert response.status_code == 201, response.content
    assert response.json()["return"]["status"] == "refunded"
    assert f"Your return for order {order.number} is refunded" not in sent(inbox)
    assert not Notification.objects.filter(kind__in=["refund_made", "return_refunded"]).exists()


def test_given_a_hostile_customer_name_then_the_html_escapes_it_and_the_text_keeps_it(
    fake_gateway, inbox
):
    new_order(fake_gateway, shipping_address=address(name=HOSTILE))

    assert len(sent(inbox)) == 1
    text, html = bodies(inbox.messages[0])

    assert f"Hello {HOSTILE}," in text
    assert "<script>" not in html and "<b>Bob</b>" not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;Bob&lt;/b&gt;" in html


def test_given_a_sent_mail_when_its_job_runs_again_then_it_is_not_sent_twice(fake_gateway, inbox):
    order = new_order(fake_gateway)
    run_jobs(emails=True)
    row = Notification.objects.get(order=order, kind="order_placed")

    assert send_notification(row.pk) is False
    assert send_notification(row.pk) is False

    assert len(inbox.to("ada@example.com")) == 1
    row.refresh_from_db()
    assert row.sent_at is not None and row.attempts == 1


def test_given_an_event_recorded_twice_then_one_mail(fake_gateway, inbox):
    order = paid_order(fake_gateway)
    from shopkeeper.payments.services import sync_from_stripe

    sync_from_stripe(order.payments.get().intent_id, gateway=fake_gateway)  # the same news again

    assert sent(inbox) == [
        f"Your order {order.number}",
        f"Payment received for order {order.number}",
    ]
    assert Notification.objects.filter(order=order).count() == 2


def test_given_the_smtp_server_refuses_then_the_job_retries_and_the_mail_goes_once(
    fake_gateway, inbox
):
    inbox.refuse_next(2)
    order = new_order(fake_gateway)

    first = run_jobs(retries_wait=True, emails=True)

    assert [run.outcome for run in first] == ["retried"]
    row = Notification.objects.get(order=order)
    assert row.sent_at is None and row.attempts == 1
    assert "SMTPDataError" in row.last_error and "451" in row.last_error
    assert not inbox.messages

    runs = run_jobs(seconds_later=3600, emails=True)

    assert [run.outcome for run in runs] == ["retried", "succeeded"]
    row.refresh_from_db()
    assert row.sent_at is not None and row.attempts == 3 and row.last_error == ""
    assert inbox.subjects() == [f"Your order {order.number}"]


def test_given_the_smtp_server_is_down_then_the_job_retries(fake_gateway, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2
    order = new_order(fake_gateway)

    (run,) = run_jobs(retries_wait=True, emails=True)

    assert run.outcome == "retried" and isinstance(run.error, OSError)
    row = Notification.objects.get(order=order)
    assert row.sent_at is None and row.attempts == 1 and row.last_error


def test_given_a_rolled_back_event_then_no_mail_is_owed(fake_gateway, inbox, manager_api):
    order = paid_order(fake_gateway)  # paid: cancelling is refused (refund first)
    run_jobs(emails=True)

    refused = manager_api.post(f"/orders/{order.number}/cancel", {"reason": "changed mind"})

    assert refused.status_code == 409, refused.content
    assert not Notification.objects.filter(kind="order_cancelled").exists()
    with pytest.raises(Exception, match="refund"):
        cancel_order(order_number=order.number, reason="again", actor=None)
    assert not Notification.objects.filter(kind="order_cancelled").exists()
