"""Refunds against a real localstripe through the real Stripe SDK.

localstripe accepts over-refunds and ignores Idempotency-Key, so these tests show that our own
checks stop over-refunds and that our keys make one refund per request. To lose a response "on
the wire", a small HTTP proxy sits between the SDK and localstripe: it plays Stripe's
idempotency layer (the first response for a key is stored and replayed) and can drop the
connection after localstripe has made the refund, before the answer reaches us.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.payments.stripe_gateway import StripeGateway
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import RefundExceedsRefundable
from shopkeeper.refunds.services import request_refund
from tests.integration.refund_fixtures import (
    Api,
    paid_order,
    refunded_minor,
    staff,
    token_for,
)

pytestmark = [pytest.mark.localstripe, pytest.mark.django_db]


@pytest.fixture(autouse=True)
def fast(settings):
    settings.SHOPKEEPER_REFUND_RETRY_DELAYS = [0.05, 0.1]


@pytest.fixture
def manager():
    return staff("manager")


def refunds_at_stripe(gateway, order: Order) -> list:
    return gateway.list_refunds(order.payments.get().intent_id)


def test_given_paid_order_when_refunded_in_full_then_one_stripe_refund_and_ledger_matches(
    localstripe_gateway, manager
):
    order = paid_order(localstripe_gateway)
    assert order.payment_status == "paid"

    refund = request_refund(order_number=order.number, actor=manager, reason="duplicate")

    assert refund.status == "succeeded" and refund.stripe_refund_id.startswith("re_")
    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert (at_stripe.id, at_stripe.amount) == (refund.stripe_refund_id, 2500)
    assert at_stripe.metadata["refund_key"] == str(refund.key)
    assert refunded_minor(order) == 2500
    assert Order.objects.get(pk=order.pk).payment_status == "refunded"


def test_given_partial_and_repeated_refunds_then_our_check_stops_the_over_refund(
    localstripe_gateway, manager
):
    order = paid_order(localstripe_gateway)
    for amount in ("10.00", "7.50"):
        refund = request_refund(
            order_number=order.number, actor=manager, amount=amount, reason="other"
        )
        assert refund.status == "succeeded"

    with pytest.raises(RefundExceedsRefundable):  # localstripe itself would have accepted it
        request_refund(order_number=order.number, actor=manager, amount="7.51", reason="other")
    last = request_refund(order_number=order.number, actor=manager, reason="other")

    assert last.amount_minor == 750
    amounts = sorted(r.amount for r in refunds_at_stripe(localstripe_gateway, order))
    assert amounts == [750, 750, 1000]
    assert refunded_minor(order) == 2500
    assert Order.objects.get(pk=order.pk).payment_status == "refunded"


def test_given_api_request_repeated_with_its_key_then_localstripe_refunds_once(
    localstripe_gateway,
):
    order = paid_order(localstripe_gateway)
    api = Api(token_for(staff("owner")))
    body = {"amount": "4.00", "reason": "requested_by_customer"}

    first = api.refund(order.number, body, key="dialog-7")
    second = api.refund(order.number, body, key="dialog-7")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert len(refunds_at_stripe(localstripe_gateway, order)) == 1


@pytest.mark.parametrize("lost", [1, 3])
def test_given_response_lost_on_the_wire_after_the_refund_then_one_refund(
    localstripe_gateway, localstripe_url, manager, lost
):
    """1 lost answer is retried by the SDK; 3 exhaust it, and our own retry (same key) finds it."""
    order = paid_order(localstripe_gateway)
    with LossyStripe(localstripe_url) as proxy:
        gateway = StripeGateway(
            secret_key="sk_test_lossy", webhook_secret="whsec_x", api_base=proxy.url, emulator=True
        )
        proxy.drop_refund_answers = lost

        refund = request_refund(
            order_number=order.number,
            actor=manager,
            amount="6.00",
            reason="other",
            gateway=gateway,
        )

    assert proxy.refund_posts > lost  # the request really was sent again
    assert refund.status == "succeeded"
    assert refund.attempts == (1 if lost < 3 else 2)
    (at_stripe,) = refunds_at_stripe(localstripe_gateway, order)
    assert at_stripe.id == refund.stripe_refund_id
    entry = LedgerEntry.objects.get(order=order, kind="refund")
    assert (entry.amount_minor, entry.external_id) == (600, at_stripe.id)
    assert Refund.objects.filter(order=order).count() == 1


class LossyStripe:
    """An HTTP proxy to localstripe with Stripe's idempotency, able to lose refund answers."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlparse(upstream)
        self.drop_refund_answers = 0
        self.refund_posts = 0
        self._replies: dict[str, tuple[int, bytes]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LossyStripe:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes):
        connection = http.client.HTTPConnection(
            self.upstream.hostname, self.upstream.port, timeout=10
        )
        try:
            connection.request(method, path, body=body or None, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def answer(self, method: str, path: str, headers: dict[str, str], body: bytes):
        """(status, body), or None to drop the connection with no answer."""
        key = headers.get("Idempotency-Key") if method == "POST" else None
        with self._lock:  # one request at a time: enough for these tests
            if path.startswith("/v1/refunds") and method == "POST":
                self.refund_posts += 1
            if key is not None and key in self._replies:
                reply = self._replies[key]
            else:
                reply = self.forward(method, path, headers, body)
                if key is not None:
                    self._replies[key] = reply
            if path.startswith("/v1/refunds") and method == "POST" and self.drop_refund_answers:
                self.drop_refund_answers -= 1
                return None
        return reply

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() not in ("host", "connection", "content-length")
                }
                reply = proxy.answer(self.command, self.path, headers, body)
                if reply is None:
                    self.close_connection = True
                    self.connection.shutdown(2)  # the answer is lost on the way back
                    return
                status, content = reply
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _relay

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
