"""A missed webhook found against a real localstripe: the customer pays at Stripe, no webhook
comes (localstripe's webhooks are muted for the test: other tests of the session point them at a
live server), `webhooks sync` lists localstripe's Events API and the worker processes what it
stored: the order is paid."""

from __future__ import annotations

import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from shopkeeper.orders.models import Order
from shopkeeper.stripe_events.missed import sync_missed_events
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import new_order
from tests.jobs import run_jobs

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db]
# The names this session's tests register webhooks under (browser: the storefront; stripe:
# localstripe's own webhooks).
WEBHOOK_NAMES = ("shopkeeper", "shopkeeper-test")


@pytest.fixture
def no_webhooks(localstripe_url: str) -> Iterator[None]:
    """localstripe cannot forget a webhook: each one kept, for an event type it never sends."""
    body = urllib.parse.urlencode(
        {"url": "http://127.0.0.1:9/", "secret": "whsec_muted", "events[0]": "shopkeeper.muted"}
    ).encode()
    for name in WEBHOOK_NAMES:
        request = urllib.request.Request(
            f"{localstripe_url}/_config/webhooks/{name}", data=body, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
    yield


def test_given_a_payment_succeeded_whose_webhook_never_came_then_sync_finds_it_and_pays_the_order(
    localstripe_gateway, browser, no_webhooks
):
    order = new_order(price="10.50", stock=10)
    intent_id = order.payments.get().intent_id
    browser.v1.payment_intents.update(intent_id, params={"payment_method": "pm_card_visa"})
    assert browser.v1.payment_intents.confirm(intent_id).status == "succeeded"
    assert Order.objects.get(pk=order.pk).payment_status != "paid"  # nobody told us

    out = StringIO()
    call_command("webhooks", "sync", "--hours", "1", stdout=out)

    ours = WebhookEvent.objects.get(
        type="payment_intent.succeeded", payload__data__object__id=intent_id
    )
    assert (ours.status, ours.source) == ("received", "events_api")
    assert "stored now" in out.getvalue()
    run_jobs()  # the worker
    assert Order.objects.get(pk=order.pk).payment_status == "paid"
    ours.refresh_from_db()
    assert ours.status == "processed"

    # Listed again, nothing is stored twice.
    again = sync_missed_events(since=timezone.now() - timedelta(hours=1), actor_label="test")
    assert again.stored == 0 and again.already_stored == again.listed >= 1
