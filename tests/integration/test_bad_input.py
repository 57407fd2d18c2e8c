"""Bad input never gets a 500: NUL bytes in a path, a query or a form, and bodies over
SHOPKEEPER_MAX_BODY_BYTES (413 before the rest is read). Amounts, webhooks: their own tests."""

from __future__ import annotations

import base64
import json
import socket
import time

import pytest
from django.test import Client

from shopkeeper.catalog.models import Product
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import paid_order, staff, token_for
from tests.fakes import sign_payload
from tests.integration.server_process import ServerProcess, shopkeeper_env

pytestmark = pytest.mark.django_db
PROBLEM = "application/problem+json"
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def owner_client() -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_for(staff('owner'))}")


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "path", ["/checkout/pay/%00", "/checkout/pay/ab%00cd", "/api/admin/orders/%00", "/admin/%00"]
)
def test_given_a_nul_byte_in_the_path_then_404_problem(owner_client, path):
    assert_problem(owner_client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    ["/api/admin/orders?q=%00", "/api/admin/orders?status=paid&q=a%00b", "/?q=%00", "/cart?%00=1"],
)
def test_given_a_nul_byte_in_the_query_then_422_problem(owner_client, path):
    assert_problem(owner_client.get(path), 422, "invalid_input")


@pytest.mark.parametrize("path", ["/cart/add", "/cart/update", "/cart/remove", "/checkout"])
def test_given_a_nul_byte_in_a_posted_form_then_422_problem(path):
    """As a browser sends a form (urlencoded); multipart fields meet the forms' own NUL check."""
    response = Client().post(path, "sku=MU%00G&quantity=1", content_type=FORM)
    assert_problem(response, 422, "invalid_input")


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "1.00", "reason": "other", "note": "a\u0000b"},
        {"amount": "1.00", "reason": "other\u0000"},
        {
            "amount": "1.00",
            "reason": "other",
            "lines": [{"line_id": 1, "quantity": 1}],
            "x\u0000": 1,
        },
    ],
)
def test_given_a_nul_character_in_a_json_body_then_422_problem_and_no_refund(
    fake_gateway, owner_client, body
):
    """Found by schemathesis on PostgreSQL: a NUL in a refund's note or reason was a 500
    (PostgreSQL stores no NUL in text)."""
    order = paid_order(fake_gateway)

    response = owner_client.post(
        f"/api/admin/orders/{order.number}/refunds",
        json.dumps(body),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="nul-body",
    )

    assert_problem(response, 422, "invalid_input")
    assert not Refund.objects.exists()


def test_given_a_backslash_u0000_spelled_out_in_a_json_string_then_it_is_ordinary_text(
    owner_client,
):
    body = {"sku": "LIT", "name": "literally \\u0000", "price": "1.00", "currency": "USD"}
    response = owner_client.post("/api/admin/products", json.dumps(body), "application/json")
    assert response.status_code == 201, response.content


def test_given_a_nul_byte_in_a_header_then_422_problem(owner_client):
    response = owner_client.get("/api/admin/orders", HTTP_USER_AGENT="probe\x00")
    assert_problem(response, 422, "invalid_input")


def cursor_of(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "value",
    [
        ["0001-01-01T00:00:00+05:00", 1],  # before year 1 in UTC
        ["9999-12-31T23:59:59-05:00", 1],  # after year 9999 in UTC
        ["2020-01-01T00:00:00+00:00", 2**70],  # no such row id
        ["2020-01-01T00:00:00+00:00", -(2**70)],
    ],
)
def test_given_a_well_formed_cursor_with_values_out_of_range_then_422_problem(owner_client, value):
    response = owner_client.get("/api/admin/orders", {"cursor": cursor_of(value)})
    assert_problem(response, 422, "invalid_cursor")


@pytest.fixture
def small_limit(settings):
    settings.SHOPKEEPER_MAX_BODY_BYTES = 1000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000


def test_given_an_api_body_over_the_limit_then_413_problem_and_nothing_stored(
    small_limit, owner_client
):
    body = '{"sku": "BIG", "name": "%s", "price": "1.00", "currency": "USD"}' % ("n" * 2000)

    response = owner_client.post("/api/admin/products", body, content_type="application/json")

    assert_problem(response, 413, "body_too_large")
    assert not Product.objects.exists()


def test_given_a_webhook_over_the_limit_then_413_problem_and_nothing_stored(small_limit):
    payload = b'{"id": "evt_big", "type": "x", "pad": "' + b"p" * 2000 + b'"}'

    response = Client().post(
        "/webhooks/stripe",
        payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=sign_payload(payload),
    )

    assert_problem(response, 413, "body_too_large")
    assert not WebhookEvent.objects.exists()


def test_given_a_form_over_the_limit_then_413_and_a_readable_page(small_limit):
    response = Client().post("/cart/add", {"sku": "MUG", "quantity": "1", "pad": "p" * 2000})

    assert response.status_code == 413
    assert response["Content-Type"].startswith("text/html")
    assert b"too large" in response.content


def test_given_a_body_within_the_limit_then_it_is_handled(small_limit, owner_client):
    body = '{"sku": "OK", "name": "Mug", "price": "1.00", "currency": "USD", "stock": 1}'
    response = owner_client.post("/api/admin/products", body, content_type="application/json")
    assert response.status_code == 201, response.content


def read_answer(sock: socket.socket, until: bytes = b"}") -> str:
    """What the server answers, up to the end of its JSON body (or the connection's end)."""
    data = b""
    while not data.rstrip(b"\r\n0").endswith(until):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


@pytest.mark.django_db(transaction=True)
def test_given_a_huge_content_length_to_the_real_server_then_413_before_the_body_is_sent(
    tmp_path,
):
    """Only the headers and a few bytes are sent: the answer comes without waiting for the rest."""
    env = shopkeeper_env(tmp_path, SHOPKEEPER_MAX_BODY_BYTES="1024")
    with ServerProcess(env, tmp_path / "server.log") as server:
        head = (
            "POST /api/admin/products HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n{"
        )
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head.encode())
            answer = read_answer(sock)
        elapsed = time.monotonic() - started

    assert answer.startswith("HTTP/1.1 413"), answer
    assert PROBLEM in answer and '"code": "body_too_large"' in answer
    assert elapsed < 5


@pytest.mark.django_db(transaction=True)
def test_given_a_chunked_body_to_the_real_server_then_it_is_never_read_into_memory(tmp_path):
    """Without a Content-Length Django reads no body under WSGI: the answer (a problem, not a
    500) comes while the client is still sending chunks."""
    token = token_for(staff("owner"))
    env = shopkeeper_env(tmp_path, SHOPKEEPER_MAX_BODY_BYTES="1024")
    with ServerProcess(env, tmp_path / "server.log") as server:
        head = (
            "POST /api/admin/products HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n%s\r\n" % (4096, b"x" * 4096)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(head.encode() + chunk * 4)
            answer = read_answer(sock)

    assert answer.startswith(("HTTP/1.1 400", "HTTP/1.1 422")), answer
    assert PROBLEM in answer and not Product.objects.exists()
