"""Test tiers and shared fixtures: the one place that decides which tiers run.

Every tier runs on PostgreSQL (DATABASE_URL; `dev.py test` starts an embedded one without it).
- unit: pure domain, no database.
- integration: Django + database (races, row locks and triggers included).
- stripe: against a real localstripe process started here (marker `localstripe`).
- browser: Playwright driving Debian's Chromium (marker `browser`); skipped, with a banner at the
  end, when Chromium is missing, unless SHOPKEEPER_REQUIRE_BROWSER=1 makes that a failure.
- scale: three `shopkeeper serve` processes and two workers on a database of the tier's own
  (marker `scale`, tests/scale/conftest.py); it needs only Python packages `dev.py test`
  installs, so it runs everywhere; skipped (with a banner) only when they are missing, and
  SHOPKEEPER_REQUIRE_SCALE=1 (CI) makes that a failure.

Rows come from tests/factories.py (`manager` and `support` are staff made there); every test
gets the in-memory FakeGateway unless it asks for `localstripe_gateway`. Passwords are
hashed with MD5 (fast) unless a test asks for `production_password_hashers`. Hypothesis runs the
quick `dev` profile unless HYPOTHESIS_PROFILE says otherwise (`dev.py test` sets `ci`). A refund
whose outcome Stripe left unknown is retried after the delays of the test's
`refund_retry_delays(...)` marker, else of its tier's conftest (`tier_refund_retry_delays`), else
production's.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from shopkeeper.accounts.models import User
from shopkeeper.payments.provider import use_gateway
from tests.factories import staff
from tests.fakes import FakeGateway
from tests.secret_watch import SecretWatch
from tests.stripe_recorder import StripeRecorder

CHROMIUM = Path(os.environ.get("SHOPKEEPER_CHROMIUM", "/usr/bin/chromium"))
REQUIRE_BROWSER = os.environ.get("SHOPKEEPER_REQUIRE_BROWSER") == "1"
FAST_PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
PRODUCTION_HASHERS = pytest.StashKey[list[str]]()

# `ci`: Hypothesis's own depth (100 examples a property), what the test command runs; `dev`: a
# quick look while writing code. Tests that set their own `max_examples` keep it in both.
hypothesis_settings.register_profile("ci", max_examples=100)
hypothesis_settings.register_profile("dev", max_examples=20)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config: pytest.Config) -> None:
    """Tests hash passwords with MD5: Argon2 costs ~50 ms a password (production keeps it).
    `reconcile` does not pace its requests (the FakeGateway and localstripe have no rate
    limit); `tests/unit/test_reconcile_pacing.py` tests the pacing itself."""
    from django.conf import settings

    config.stash[PRODUCTION_HASHERS] = list(settings.PASSWORD_HASHERS)
    settings.PASSWORD_HASHERS = FAST_PASSWORD_HASHERS
    settings.SHOPKEEPER_RECONCILE_REQUESTS_PER_SECOND = 0


@pytest.fixture
def production_password_hashers(
    request: pytest.FixtureRequest, settings: pytest.FixtureRequest
) -> list[str]:
    """The production hashers (Argon2 first), for tests of hashing or of another process."""
    hashers = request.config.stash[PRODUCTION_HASHERS]
    settings.PASSWORD_HASHERS = hashers  # type: ignore[attr-defined]
    return hashers


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if not CHROMIUM.exists() and any("browser" in report.keywords for report in skipped):
        rule = "!" * 78
        terminalreporter.write_line(rule)
        terminalreporter.write_line(f"!!  BROWSER TIER SKIPPED: Chromium not found at {CHROMIUM}.")
        terminalreporter.write_line("!!  Install it with: sudo apt-get install chromium")
        terminalreporter.write_line("!!  (SHOPKEEPER_REQUIRE_BROWSER=1 turns this into a failure.)")
        terminalreporter.write_line(rule)
    if any("scale" in report.keywords for report in skipped):
        rule = "!" * 78
        terminalreporter.write_line(rule)
        terminalreporter.write_line("!!  SCALE TIER SKIPPED (see the skip reason above).")
        terminalreporter.write_line("!!  (SHOPKEEPER_REQUIRE_SCALE=1 turns this into a failure.)")
        terminalreporter.write_line(rule)


@pytest.fixture
def tier_refund_retry_delays() -> list[float] | None:
    """The seconds a tier's refunds wait before each retry; None keeps production's. A tier's
    conftest overrides this fixture."""
    return None


@pytest.fixture(autouse=True)
def refund_retry_delays(
    request: pytest.FixtureRequest,
    settings: pytest.FixtureRequest,
    tier_refund_retry_delays: list[float] | None,
) -> list[float]:
    """SHOPKEEPER_REFUND_RETRY_DELAYS for this test: its marker's (`@pytest.mark.
    refund_retry_delays()` for no retry at all), else its tier's, else production's."""
    marker = request.node.get_closest_marker("refund_retry_delays")
    delays = [float(delay) for delay in marker.args] if marker else tier_refund_retry_delays
    if delays is not None:
        settings.SHOPKEEPER_REFUND_RETRY_DELAYS = delays  # type: ignore[attr-defined]
    return list(settings.SHOPKEEPER_REFUND_RETRY_DELAYS)  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def no_periodic_ticks(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """A real worker started by a test defers no periodic job at the clock's ticks (a test
    counting jobs would meet them at random); a test of a periodic job defers it itself, or
    says `@pytest.mark.periodic_ticks` to keep the schedule."""
    if request.node.get_closest_marker("periodic_ticks") is None:
        from procrastinate.contrib.django import app

        monkeypatch.setattr(app.periodic_registry, "periodic_tasks", {})
    yield


@pytest.fixture
def manager() -> User:
    return staff("manager")


@pytest.fixture
def support() -> User:
    return staff("support")


@pytest.fixture(scope="session", autouse=True)
def stripe_secret_never_shown() -> Iterator[SecretWatch]:
    """Every log record and every response of the session is searched for a Stripe secret key;
    any sighting fails the run at its end (tests/secret_watch.py)."""
    with SecretWatch().watching() as watch:
        yield watch
    assert not watch.sightings, "Stripe secret key shown:\n" + "\n".join(watch.sightings[:20])


@pytest.fixture(autouse=True)
def no_jobs_left_between_tests(
    request: pytest.FixtureRequest, django_db_blocker: pytest.FixtureRequest
) -> Iterator[None]:
    """A transactional test's jobs are emptied after it, like its tables: Django's flush leaves
    procrastinate's tables alone (they are not Django-managed). Other tests roll them back."""
    yield
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction")
    )
    if not transactional:
        return
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "TRUNCATE procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers,"
            " procrastinate_workers RESTART IDENTITY CASCADE"
        )


@pytest.fixture
def background_worker(transactional_db: None) -> Iterator[None]:
    """A real worker (procrastinate's) running beside the test, as beside a server."""
    from tests.jobs import running_worker

    with running_worker():
        yield


@pytest.fixture(autouse=True)
def fake_gateway() -> Iterator[FakeGateway]:
    gateway = FakeGateway()
    with use_gateway(gateway):
        yield gateway


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def recorder() -> Iterator[StripeRecorder]:
    """A local HTTP server in Stripe's place that records every request and answers it."""
    with StripeRecorder().running() as recorder:
        yield recorder


@pytest.fixture(scope="session")
def localstripe_url() -> Iterator[str]:
    """A real localstripe process (in-memory store) for this test session."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "shopkeeper.demo.localstripe_server", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        from shopkeeper.demo.localstripe_server import wait_until_up

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
        if REQUIRE_BROWSER:
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM
