"""SHOPKEEPER_STALLED_JOB_AFTER and SHOPKEEPER_STALLED_JOB_CHECK_EVERY: read, or refused clearly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

READ = (
    "from shopkeeper import settings as s;"
    "print(s.SHOPKEEPER_STALLED_JOB_AFTER.total_seconds(), s.SHOPKEEPER_STALLED_JOB_CHECK_CRON)"
)


def read_settings(**environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPKEEPER_STALLED")}
    env.setdefault("DATABASE_URL", "postgres://shopkeeper@127.0.0.1:5432/shopkeeper")  # unused
    return subprocess.run(
        [sys.executable, "-c", READ], env={**env, **environ}, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("environ", "printed"),
    [
        ({}, "30.0 */1 * * * *"),
        ({"SHOPKEEPER_STALLED_JOB_CHECK_EVERY": "10s"}, "30.0 * * * * * */10"),
        ({"SHOPKEEPER_STALLED_JOB_CHECK_EVERY": "15m"}, "30.0 */15 * * * *"),
        ({"SHOPKEEPER_STALLED_JOB_AFTER": "2m"}, "120.0 */1 * * * *"),
    ],
)
def test_given_a_setting_then_read(environ, printed):
    done = read_settings(**environ)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == printed.split()


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SHOPKEEPER_STALLED_JOB_CHECK_EVERY": "7s"}, "must divide a minute"),
        ({"SHOPKEEPER_STALLED_JOB_CHECK_EVERY": "2h"}, "must divide a minute"),
        ({"SHOPKEEPER_STALLED_JOB_CHECK_EVERY": "soon"}, "SHOPKEEPER_STALLED_JOB_CHECK_EVERY"),
        ({"SHOPKEEPER_STALLED_JOB_AFTER": "0s"}, "at least 1s"),
    ],
)
def test_given_a_bad_setting_then_refused_with_its_name(environ, message):
    done = read_settings(**environ)
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and message in done.stderr, done.stderr
