"""`shopkeeper serve` keeps its database connections: one per request thread, reused by the
requests that thread serves (DATABASE_CONN_MAX_AGE, docs/deployment.md), not one per request."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from tests.factories import staff, token_for
from tests.integration.server_process import ServerProcess, shopkeeper_env

pytestmark = pytest.mark.django_db(transaction=True)


def server_backends() -> set[tuple[int, object]]:
    """(pid, backend_start) of every other client connected to the test database."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
        return set(cursor.fetchall())


def orders_page(url: str, token: str) -> int:
    request = urllib.request.Request(
        f"{url}/api/admin/orders", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        json.loads(response.read())
        return int(response.status)


def backends_of_two_requests(tmp_path: Path, **settings: str) -> list[set[tuple[int, object]]]:
    token = token_for(staff("manager"))
    env = shopkeeper_env(tmp_path, **settings)
    seen = []
    others = server_backends()  # connections left by earlier tests of this process, if any
    with ServerProcess(env, tmp_path / "server.log", "--threads", "1") as server:
        for _ in range(2):
            assert orders_page(server.url, token) == 200
            seen.append(server_backends() - others)
    return seen


def test_given_serve_with_one_thread_when_two_requests_then_one_connection_serves_both(tmp_path):
    first, second = backends_of_two_requests(tmp_path)

    assert len(first) == 1, first  # the master closed its own before the worker forked
    assert second == first  # with DATABASE_CONN_MAX_AGE=0 both would be empty


def test_given_the_same_settings_then_a_thread_keeps_one_stripe_gateway_and_its_connection(
    settings,
):
    from shopkeeper.payments.provider import gateway_from_settings

    settings.STRIPE_API_BASE = "http://127.0.0.1:9"  # never called here
    first, again = gateway_from_settings(), gateway_from_settings()
    elsewhere: list[object] = []
    thread = threading.Thread(target=lambda: elsewhere.append(gateway_from_settings()))
    thread.start()
    thread.join()
    settings.STRIPE_TIMEOUT = 3.0
    changed = gateway_from_settings()

    assert again is first
    assert elsewhere[0] is not first  # one per thread: an HTTP session is not shared
    assert changed is not first
