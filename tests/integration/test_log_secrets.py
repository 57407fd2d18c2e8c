"""Secrets in logs, through a real `shopkeeper serve`: an API token sent as Basic credentials
(django-ninja logs "Unexpected auth" with the header's value), a token in a query string (the
access log keeps the request line) and Basic credentials never appear in the server's output."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request

import pytest

from tests.factories import staff, token_for
from tests.integration.server_process import ServerProcess, shopkeeper_env


def get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


@pytest.mark.django_db(transaction=True)
def test_given_tokens_and_credentials_in_requests_then_no_log_line_shows_them(tmp_path):
    token = token_for(staff("owner"))
    basic = base64.b64encode(b"owner@shop.example:s3cret-passw0rd").decode()
    env = shopkeeper_env(tmp_path, SHOPKEEPER_DEBUG="1")  # ninja logs "Unexpected auth" in DEBUG

    with ServerProcess(env, tmp_path / "server.log") as server:
        api = f"{server.url}/api/admin/orders"
        assert get(api, {"Authorization": f"Basic {token}"}) == 401
        assert get(api, {"Authorization": f"Basic {basic}"}) == 401
        assert get(f"{api}?token={token}&q=123", {}) == 401
        assert get(f"{api}?q=123", {"Authorization": f"Bearer {token}"}) == 200
        server.stop()
        output = server.output()

    assert "Unexpected auth - '****'" in output  # the app's log line, masked
    assert "GET /api/admin/orders?token=****&q=123" in output  # the access log, masked
    for secret in (token, token[4:], basic, "s3cret-passw0rd", "owner@shop.example"):
        assert secret not in output, output
