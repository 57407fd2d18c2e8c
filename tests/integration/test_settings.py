"""Configuration from the environment: production refuses the development defaults.

Settings are read once per process, so each case runs `shopkeeper` in a fresh subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REAL_SECRETS = {
    "SHOPKEEPER_SECRET_KEY": "a-long-random-production-secret-0123456789",
    "STRIPE_SECRET_KEY": "sk_test_configured_for_this_test",
    "STRIPE_WEBHOOK_SECRET": "whsec_configured_for_this_test",
    "SHOPKEEPER_AUDIT_KEY": "an-audit-key-kept-outside-the-database-0123",
    "ALLOWED_HOSTS": "shop.example.com",
}
# `check` never connects: any PostgreSQL URL will do.
SOME_DATABASE = "postgres://shopkeeper@127.0.0.1:5432/shopkeeper"


def shopkeeper(tmp_path: Path, *args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("STRIPE_", "SHOPKEEPER_")) and key not in ("DATABASE_URL",)
    }
    clean.pop("ALLOWED_HOSTS", None)
    clean["SHOPKEEPER_DATA_DIR"] = str(tmp_path)
    clean["DATABASE_URL"] = SOME_DATABASE
    environment = {**clean, **env}
    return subprocess.run(
        [sys.executable, "-m", "shopkeeper", *args],
        env={key: value for key, value in environment.items() if value is not None},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("command", [["check"], ["serve", "--port", "0"], ["migrate"]])
def test_given_production_with_default_secrets_when_starting_then_it_refuses_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    result = shopkeeper(tmp_path, *command, SHOPKEEPER_ENV="production")

    assert result.returncode != 0
    assert result.stderr.strip() == (
        "shopkeeper: configuration error: Refusing to run in production with default secrets: "
        "SHOPKEEPER_SECRET_KEY, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET, SHOPKEEPER_AUDIT_KEY"
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert not any(tmp_path.iterdir())  # nothing was touched


@pytest.mark.parametrize("environment", ["development", "production"])
def test_given_no_database_url_when_starting_then_it_refuses_in_one_line(
    tmp_path: Path, environment: str
) -> None:
    """PostgreSQL only: no database is made up (no SQLite file) when DATABASE_URL is unset."""
    result = shopkeeper(
        tmp_path, "migrate", DATABASE_URL=None, SHOPKEEPER_ENV=environment, **REAL_SECRETS
    )

    assert result.returncode != 0
    assert result.stderr.strip() == (
        "shopkeeper: configuration error: DATABASE_URL is not set: point it at a PostgreSQL "
        "database, e.g. postgres://user:password@127.0.0.1:5432/shopkeeper "
        "(python3 dev.py run and python3 dev.py test start an embedded one)"
    )
    assert "Traceback" not in result.stderr + result.stdout
    assert not any(tmp_path.iterdir())  # no SQLite file, nothing else


def test_given_a_database_url_that_is_not_postgresql_then_it_refuses(tmp_path: Path) -> None:
    result = shopkeeper(tmp_path, "check", DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")

    assert result.returncode != 0
    assert "DATABASE_URL must name a PostgreSQL database (postgres://...)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "still_default", ["SHOPKEEPER_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "SHOPKEEPER_AUDIT_KEY"]
)
def test_given_production_with_one_default_secret_then_that_one_is_named(
    tmp_path: Path, still_default: str
) -> None:
    secrets = {k: v for k, v in REAL_SECRETS.items() if k != still_default}

    result = shopkeeper(tmp_path, "check", SHOPKEEPER_ENV="production", **secrets)

    assert result.returncode != 0
    assert result.stderr.strip().endswith(f"default secrets: {still_default}")


def test_given_production_without_allowed_hosts_then_it_refuses(tmp_path: Path) -> None:
    secrets = {k: v for k, v in REAL_SECRETS.items() if k != "ALLOWED_HOSTS"}

    result = shopkeeper(tmp_path, "check", SHOPKEEPER_ENV="production", **secrets)

    assert result.returncode != 0
    assert "ALLOWED_HOSTS must be set in production" in result.stderr


def test_given_production_with_every_secret_set_then_it_starts(tmp_path: Path) -> None:
    result = shopkeeper(tmp_path, "check", SHOPKEEPER_ENV="production", **REAL_SECRETS)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_given_development_then_the_defaults_are_accepted(tmp_path: Path) -> None:
    result = shopkeeper(tmp_path, "check")

    assert result.returncode == 0, result.stderr


def test_given_an_unknown_capture_mode_then_it_refuses(tmp_path: Path) -> None:
    result = shopkeeper(tmp_path, "check", SHOPKEEPER_CAPTURE="later")

    assert result.returncode != 0
    assert "SHOPKEEPER_CAPTURE must be 'automatic', 'manual' or 'on_fulfillment'" in result.stderr
    assert "Traceback" not in result.stderr


def test_given_an_idempotency_lease_shorter_than_the_longest_request_then_it_refuses(
    tmp_path: Path,
) -> None:
    """STRIPE_TIMEOUT 10, a wait at the rate limiter of up to 10 s a send, and retry delays
    0.5,2: a refund request may run 3 x (10 + 10) + 2.5 s."""
    short = shopkeeper(tmp_path, "check", SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS="30")
    fitting = shopkeeper(
        tmp_path,
        "check",
        SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS="30",
        STRIPE_TIMEOUT="5",
        STRIPE_RATE_LIMIT_MAX_WAIT="2",
    )

    assert short.returncode != 0 and "Traceback" not in short.stderr
    assert "SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS must exceed the longest request (62.5 s" in (
        short.stderr
    )
    assert fitting.returncode == 0, fitting.stderr


@pytest.mark.parametrize("name", ["STRIPE_MAX_REQUESTS_PER_SECOND", "STRIPE_RATE_LIMIT_MAX_WAIT"])
def test_given_a_rate_limit_setting_that_is_no_number_then_it_refuses(
    tmp_path: Path, name: str
) -> None:
    result = shopkeeper(tmp_path, "check", **{name: "fast"})

    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{name} must be a number of 0 or more, not 'fast'" in result.stderr


@pytest.mark.parametrize("hours", ["0", "721"])
def test_given_an_events_sync_window_outside_stripe_s_30_days_then_it_refuses(
    tmp_path: Path, hours: str
) -> None:
    result = shopkeeper(tmp_path, "check", SHOPKEEPER_EVENTS_SYNC_HOURS=hours)

    assert result.returncode != 0
    assert "SHOPKEEPER_EVENTS_SYNC_HOURS must be a whole number of hours, 1 to 720" in result.stderr
    assert "Traceback" not in result.stderr
