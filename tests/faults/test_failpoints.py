"""Failpoints are off unless a test names them, and production refuses to start with any."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shopkeeper import failpoints
from shopkeeper.failpoints import FailpointTriggered


def test_given_a_spec_then_each_named_failpoint_gets_its_action():
    assert failpoints.parse(" refund.after_stripe=kill , other=raise,") == {
        "refund.after_stripe": "kill",
        "other": "raise",
    }
    assert failpoints.parse("") == {}


def test_given_an_unknown_action_then_refused():
    with pytest.raises(ValueError, match="action must be one of"):
        failpoints.parse("refund.after_stripe=explode")


def test_given_no_failpoints_then_hit_does_nothing(settings):
    settings.SHOPKEEPER_FAILPOINTS = {}
    failpoints.hit("refund.after_stripe")


def test_given_a_raising_failpoint_then_only_that_one_raises(settings):
    settings.SHOPKEEPER_FAILPOINTS = {"refund.after_stripe": "raise"}
    failpoints.hit("somewhere.else")
    with pytest.raises(FailpointTriggered):
        failpoints.hit("refund.after_stripe")


def test_given_a_hanging_failpoint_then_held_there_then_raises(settings, monkeypatch):
    """`hang` holds the thread (a test SIGKILLs the process meanwhile), then gives up."""
    slept: list[float] = []
    monkeypatch.setattr(failpoints.time, "sleep", slept.append)
    settings.SHOPKEEPER_FAILPOINTS = {"webhook.after_commit": "hang"}
    with pytest.raises(FailpointTriggered, match="held"):
        failpoints.hit("webhook.after_commit")
    assert slept == [failpoints.HANG_SECONDS]


def test_given_production_then_failpoints_are_refused_at_start(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHOPKEEPER_"))}
    env.update(
        SHOPKEEPER_ENV="production",
        SHOPKEEPER_SECRET_KEY="a-real-secret-for-this-check-only-0123456789",
        STRIPE_SECRET_KEY="sk_test_production_check",
        STRIPE_WEBHOOK_SECRET="whsec_production_check",
        ALLOWED_HOSTS="shop.example",
        SHOPKEEPER_AUDIT_KEY="an-audit-key-for-this-check-only-0123456789",
        SHOPKEEPER_DATA_DIR=str(tmp_path),
        SHOPKEEPER_FAILPOINTS="refund.after_stripe=kill",
    )
    env["DATABASE_URL"] = (
        "postgres://shopkeeper@127.0.0.1:5432/shopkeeper"  # `check` never connects
    )

    refused = subprocess.run(
        [sys.executable, "-m", "shopkeeper", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert refused.returncode == 2
    assert "SHOPKEEPER_FAILPOINTS is for tests" in refused.stderr
    env.pop("SHOPKEEPER_FAILPOINTS")
    accepted = subprocess.run(
        [sys.executable, "-m", "shopkeeper", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert accepted.returncode == 0, accepted.stderr
