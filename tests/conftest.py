"""Test tiers and shared fixtures.

- unit: pure domain, no database.
- integration: Django + database. The test command runs the suite once on SQLite and once on
  PostgreSQL; tests marked `postgres` (races, row locks, triggers) run only on PostgreSQL.
- stripe: against a real localstripe process started here (marker `localstripe`).
- browser: Playwright driving Debian's Chromium (marker `browser`).

Every test gets the in-memory FakeGateway unless it asks for `localstripe_gateway`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from shopkeeper.payments.provider import use_gateway
from tests.fakes import FakeGateway
from tests.secret_watch import SecretWatch

CHROMIUM = Path(os.environ.get("SHOPKEEPER_CHROMIUM", "/usr/bin/chromium"))


def _require(name: str) -> bool:
    return os.environ.get(name) == "1"


def pytest_configure(config: pytest.Config) -> None:
    """On SQLite, test in a file of this run's own rather than Django's shared-cache memory DB.

    In shared-cache memory a reader meets a writer's table lock at once ("database table is
    locked"), so a test polling the database while the live server or a webhook writes fails
    under load; a file lets them wait for each other (the 20 s busy timeout in settings).
    """
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        name = Path(tempfile.gettempdir()) / f"shopkeeper-test-{os.getpid()}.sqlite3"
        database.setdefault("TEST", {})["NAME"] = str(name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    on_postgres = connection.vendor == "postgresql"
    if _require("SHOPKEEPER_REQUIRE_POSTGRES") and not on_postgres and _only_postgres(config):
        raise pytest.UsageError("SHOPKEEPER_REQUIRE_POSTGRES=1 but DATABASE_URL is not PostgreSQL")
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL pass)")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip_pg)


def _only_postgres(config: pytest.Config) -> bool:
    return "postgres" in (config.getoption("-m") or "") and "not postgres" not in (
        config.getoption("-m") or ""
    )


@pytest.fixture(scope="session", autouse=True)
def stripe_secret_never_shown() -> Iterator[SecretWatch]:
    """Every log record and every response of the session is searched for a Stripe secret key;
    any sighting fails the run at its end (tests/secret_watch.py)."""
    with SecretWatch().watching() as watch:
        yield watch
    assert not watch.sightings, "Stripe secret key shown:\n" + "\n".join(watch.sightings[:20])


@pytest.fixture(autouse=True)
def fake_gateway() -> Iterator[FakeGateway]:
    gateway = FakeGateway()
    with use_gateway(gateway):
        yield gateway


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """A real localstripe process (in-memory store) for this test session."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper.ops.localstripe_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        from shopkeeper.ops.localstripe_server import wait_until_up

        wait_until_up(url)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def localstripe_gateway(localstripe_url: str, settings: pytest.FixtureRequest) -> Iterator[object]:
    from shopkeeper.payments.stripe.emulator import EmulatorGateway

    settings.STRIPE_API_BASE = localstripe_url  # type: ignore[attr-defined]
    gateway = EmulatorGateway(
        secret_key=settings.STRIPE_SECRET_KEY,  # type: ignore[attr-defined]
        webhook_secret=settings.STRIPE_WEBHOOK_SECRET,  # type: ignore[attr-defined]
        api_base=localstripe_url,
        timeout=5,
    )
    with use_gateway(gateway):
        yield gateway


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        message = f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
        if _require("SHOPKEEPER_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM
