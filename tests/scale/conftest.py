"""Scale tier: three `shopkeeper serve` processes and two workers on one PostgreSQL.

Needs only what `dev.py test` installs (localstripe is a Python package) and free ports, so it
runs everywhere; SHOPKEEPER_REQUIRE_SCALE=1 (CI) turns a skip into a failure. The installation
(tests/scale/installation.py) starts once per test module, on a database of its own.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scale.installation import (
    STRIPE_LIMIT,
    WORKERS,
    CountingProxy,
    Installation,
    Ports,
    run,
    scale_database,
    shopkeeper,
    start,
    wait_for,
)

REQUIRE_SCALE = os.environ.get("SHOPKEEPER_REQUIRE_SCALE") == "1"


def settings_for(database: str, stripe: str, data: Path) -> dict[str, str]:
    """The environment of every process: the caller's without its Shopkeeper and Stripe
    settings, plus the tier's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHOPKEEPER_"))}
    env.update(
        DATABASE_URL=database,
        STRIPE_API_BASE=stripe,
        SHOPKEEPER_DATA_DIR=str(data),
        PYTHONUNBUFFERED="1",
        STRIPE_MAX_REQUESTS_PER_SECOND=str(STRIPE_LIMIT),
        STRIPE_MAX_REQUESTS_PER_SECOND_PER_ENDPOINT=str(STRIPE_LIMIT),
        STRIPE_RATE_LIMIT_MAX_WAIT="60",  # 500 refunds at once: none gives up waiting its turn
        SHOPKEEPER_REFUND_RETRY_DELAYS="0.2",
        SHOPKEEPER_WEBHOOK_RETRY_SECONDS="1",
        SHOPKEEPER_STALLED_JOB_AFTER="3s",
        SHOPKEEPER_STALLED_JOB_CHECK_EVERY="1s",
        SHOPKEEPER_LOGIN_MAX_FAILURES="1000",
    )
    return env


def _needs() -> str:
    """What the tier lacks to run here ("" when nothing)."""
    if importlib.util.find_spec("localstripe") is None:
        return "localstripe is not installed (python3 dev.py test installs it)"
    return ""


def bring_up(installation: Installation, stripe: str) -> None:
    """Migrate, start the servers and workers, seed the rows (straight to localstripe, not
    through the proxy) while they start, and wait until all of them answer."""
    run(shopkeeper("migrate", "--noinput"), env=installation.env)
    installation.note("database created and migrated")
    installation.start_servers()
    for name in WORKERS:
        installation.start_worker(name)
    seed = [sys.executable, "-m", "tests.scale.seed", "--paid", "70", "--unpaid", "2"]
    seeded = run(
        [*seed, "--product", "LAST:5"], env={**installation.env, "STRIPE_API_BASE": stripe}
    )
    installation.seeded = json.loads(seeded)
    installation.note("rows seeded")
    installation.wait_for_servers()
    for name in WORKERS:
        installation.wait_for_worker(name)
    wait_for(
        "two worker heartbeats",
        lambda: installation.scalar("SELECT count(*) FROM procrastinate_workers") >= 2,
    )
    installation.note("servers and workers up")


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    missing = _needs()
    if missing:
        if REQUIRE_SCALE:
            pytest.fail(f"scale tier required (SHOPKEEPER_REQUIRE_SCALE=1): {missing}")
        pytest.skip(missing)
    from django.conf import settings

    logs = tmp_path_factory.mktemp("scale")
    ports = Ports()
    stripe_port = ports.take()
    localstripe = start(
        [sys.executable, "-m", "shopkeeper.demo.localstripe_server", "--port", str(stripe_port)],
        env=dict(os.environ),
        log=logs / "localstripe.log",
    )
    stripe = f"http://127.0.0.1:{stripe_port}"
    try:
        from shopkeeper.demo.localstripe_server import wait_until_up

        wait_until_up(stripe)
        with (
            scale_database(settings.DATABASES["default"]) as database,
            CountingProxy(stripe, port=ports.take()) as proxy,
        ):
            env = settings_for(database, proxy.url, logs)
            installation = Installation(database, env, logs, proxy, ports)
            try:
                bring_up(installation, stripe)
                yield installation
            finally:
                installation.stop()
                installation.note("servers and workers stopped")
    finally:
        localstripe.terminate()
        try:
            localstripe.wait(timeout=10)
        except subprocess.TimeoutExpired:
            localstripe.kill()
