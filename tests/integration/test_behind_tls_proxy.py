"""Staff sign in through a TLS-terminating proxy (issue 7, item 7).

A real `shopkeeper serve` in production mode behind a real HTTPS proxy on loopback
(tests/tls_proxy.py): the browser speaks HTTPS to the proxy, the proxy plain HTTP to us. Without
configuration Django sees an HTTP request whose Origin is https://..., and refuses the sign-in
form with 403 "Origin checking failed". SHOPKEEPER_PROXY_SSL_HEADER (the proxy's
X-Forwarded-Proto) or SHOPKEEPER_TRUSTED_ORIGINS lets the real login form, CSRF included, through.
With the proxy header, production's answers carry HSTS (item 11).
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import ssl
import urllib.error
import urllib.parse
import urllib.request
from email.message import Message
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.factories import staff
from tests.integration.server_process import ServerProcess, run_shopkeeper, shopkeeper_env
from tests.tls_proxy import TLSProxy, self_signed_certificate

PASSWORD = "proxy-sign-in-password"
PRODUCTION = {
    "SHOPKEEPER_ENV": "production",
    "SHOPKEEPER_SECRET_KEY": "tls-proxy-test-secret-key-0123456789-abcdefghij",
    "SHOPKEEPER_AUDIT_KEY": "tls-proxy-test-audit-key-0123456789-abcdefghij",
    "STRIPE_SECRET_KEY": "sk_test_tls_proxy",
    "STRIPE_WEBHOOK_SECRET": "whsec_tls_proxy",
    "ALLOWED_HOSTS": "localhost",
}

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
    # The server is another process, on the production hashers: it must read the password.
    pytest.mark.usefixtures("production_password_hashers"),
]


def sign_in(base: str, cert: Path) -> tuple[int, str, str, Message]:
    """The browser's way: GET the form, POST it with its CSRF token and an Origin header.

    Returns the final status, the path the sign-in ended on, the page and its headers."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=str(cert))),
        urllib.request.HTTPCookieProcessor(jar),
    )
    with opener.open(f"{base}/admin/login/", timeout=30) as form:
        page = form.read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token, page
    fields = {"csrfmiddlewaretoken": token[1], "username": "owner@shop.example"}
    request = urllib.request.Request(
        f"{base}/admin/login/",
        data=urllib.parse.urlencode({**fields, "password": PASSWORD}).encode(),
        headers={"Origin": base, "Referer": f"{base}/admin/login/"},
    )
    try:
        with opener.open(request, timeout=30) as answer:
            path = urllib.parse.urlsplit(answer.url).path
            return answer.status, path, answer.read().decode(), answer.headers
    except urllib.error.HTTPError as refused:
        path = urllib.parse.urlsplit(refused.url).path
        return refused.code, path, refused.read().decode(), refused.headers


def serve_behind_proxy(tmp_path: Path, **settings: str) -> tuple[ServerProcess, Path, Path]:
    staff("owner", password=PASSWORD)
    env = shopkeeper_env(tmp_path, **PRODUCTION, **settings)
    cert, key = self_signed_certificate(tmp_path)
    return ServerProcess(env, tmp_path / "server.log"), cert, key


@pytest.mark.django_db(transaction=True)
def test_given_no_proxy_settings_when_signing_in_over_https_then_origin_checking_fails(
    tmp_path: Path,
) -> None:
    server, cert, key = serve_behind_proxy(tmp_path)
    with server, TLSProxy(server.port, cert, key) as proxy:
        status, path, _, _ = sign_in(f"https://localhost:{proxy.port}", cert)

    assert (status, path) == (403, "/admin/login/")
    assert "Forbidden (Origin checking failed" in server.output()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "setting",
    ["SHOPKEEPER_PROXY_SSL_HEADER", "SHOPKEEPER_TRUSTED_ORIGINS"],
)
def test_given_the_proxy_configured_when_signing_in_over_https_then_staff_get_the_back_office(
    tmp_path: Path, setting: str
) -> None:
    proxy_port = free_port()
    value = {
        "SHOPKEEPER_PROXY_SSL_HEADER": "X-Forwarded-Proto",
        "SHOPKEEPER_TRUSTED_ORIGINS": f"https://localhost:{proxy_port}",
    }[setting]
    server, cert, key = serve_behind_proxy(tmp_path, **{setting: value})
    with server, TLSProxy(server.port, cert, key, port=proxy_port) as proxy:
        status, path, page, headers = sign_in(f"https://localhost:{proxy.port}", cert)

    assert (status, path) == (200, "/admin/orders")
    assert "owner@shop.example" in page
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    if setting == "SHOPKEEPER_PROXY_SSL_HEADER":  # HTTPS as far as Django knows: HSTS (item 11)
        assert headers["Strict-Transport-Security"] == "max-age=31536000"


def test_given_a_trusted_origin_without_its_scheme_when_starting_then_it_refuses(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHOPKEEPER_"))}
    env.update(SHOPKEEPER_DATA_DIR=str(tmp_path), SHOPKEEPER_TRUSTED_ORIGINS="shop.example.com")

    result = run_shopkeeper("check", env=env)

    assert result.returncode != 0
    assert "SHOPKEEPER_TRUSTED_ORIGINS: each origin needs its scheme" in result.stderr
    assert "Traceback" not in result.stderr
