"""/healthz, /readyz, /metrics and `shopkeeper status` (shopkeeper/monitoring/)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from shopkeeper import health
from shopkeeper.health import Verdict
from shopkeeper.payments.models import StripeRateBucket
from shopkeeper.refunds.models import Refund
from shopkeeper.stripe_events.models import WebhookEvent
from tests.factories import paid_order
from tests.integration.server_process import shopkeeper_env

TOKEN = "metrics-token-for-tests"
# A database nothing listens on: another process's view of an outage.
NO_DATABASE = "postgres://postgres@127.0.0.1:1/shopkeeper"


@pytest.fixture
def registered() -> Iterator[None]:
    """Checks and counts a test registers are gone after it."""
    checks, counts = dict(health._checks), dict(health._counts)
    yield
    health._checks.clear()
    health._checks.update(checks)
    health._counts.clear()
    health._counts.update(counts)


def test_given_no_database_access_then_healthz_answers_alive(client):
    """No django_db mark: any query would fail the test."""
    response = client.get("/healthz")

    assert response.status_code == 200 and response.json() == {"status": "alive"}


def beat(seconds_ago: float) -> None:
    """A worker's heartbeat, as procrastinate writes it, `seconds_ago` seconds old."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO procrastinate_workers (last_heartbeat)"
            " VALUES (now() - make_interval(secs => %s))",
            [seconds_ago],
        )


@pytest.mark.django_db
def test_given_the_database_answers_and_a_worker_beats_then_readyz_is_ready(client):
    beat(3)

    response = client.get("/readyz")

    assert response.status_code == 200
    checks = response.json()["checks"]
    assert checks["database"] == {"ok": True, "detail": "reachable"}
    assert checks["worker"]["ok"] is True and checks["queue"]["ok"] is True


@pytest.mark.django_db
def test_given_no_worker_heartbeat_or_a_stale_one_then_readyz_is_503_naming_the_worker(client):
    none = client.get("/readyz")
    beat(600)
    stale = client.get("/readyz")

    assert none.status_code == stale.status_code == 503
    assert "no worker has a heartbeat" in none.json()["checks"]["worker"]["detail"]
    assert "600 s ago" in stale.json()["checks"]["worker"]["detail"]
    assert stale.json()["checks"]["database"]["ok"] is True


@pytest.mark.django_db
def test_given_more_due_jobs_than_the_limit_then_readyz_says_the_queue_is_backed_up(
    client, settings, capsys
):
    settings.SHOPKEEPER_QUEUE_DEPTH_MAX = 1
    beat(1)
    with connection.cursor() as cursor:
        for _ in range(2):
            cursor.execute(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
                " VALUES ('default', 'shopkeeper.test', '{}', 'todo')"
            )
        cursor.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
            " VALUES ('default', 'shopkeeper.test', '{}', 'failed')"
        )

    response = client.get("/readyz")
    with pytest.raises(SystemExit):
        call_command("status")

    assert response.status_code == 503
    assert response.json()["checks"]["queue"] == {
        "ok": False,
        "detail": "2 jobs due and waiting (more than 1)",
    }
    printed = capsys.readouterr().out
    assert "queue_depth" in printed and "jobs_failed" in printed


@pytest.mark.django_db
def test_given_a_registered_check_fails_or_raises_then_readyz_is_503_with_json(client, registered):
    health.register_check("worker", lambda: Verdict(False, "no heartbeat for 90 s"))
    health.register_check("queue", lambda: 1 / 0)  # type: ignore[arg-type, return-value]

    response = client.get("/readyz")

    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    checks = response.json()["checks"]
    assert response.json()["status"] == "unready"
    assert checks["worker"] == {"ok": False, "detail": "no heartbeat for 90 s"}
    assert checks["queue"] == {"ok": False, "detail": "check raised ZeroDivisionError"}
    assert checks["database"]["ok"] is True


def outside(tmp_path: Path, code: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = shopkeeper_env(tmp_path, **settings)
    env["DATABASE_URL"] = NO_DATABASE
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


DOWN = """
import django, json, os
os.environ["DJANGO_SETTINGS_MODULE"] = "shopkeeper.settings"
django.setup()
from django.test import Client
client = Client()
ready = client.get("/readyz")
metrics = client.get("/metrics")
print(json.dumps({"ready": [ready.status_code, ready.json()],
                  "metrics": [metrics.status_code, metrics.content.decode()]}))
"""


def test_given_the_database_is_down_then_readyz_is_503_and_metrics_say_so(tmp_path):
    result = outside(tmp_path, DOWN)

    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    status, body = answers["ready"]
    assert status == 503 and body["status"] == "unready"
    assert body["checks"]["database"]["ok"] is False
    assert "127.0.0.1:1" not in json.dumps(body)  # no connection details
    status, text = answers["metrics"]
    assert status == 200 and "shopkeeper_database_up 0.0" in text


def test_given_the_database_is_down_then_status_says_failed_and_exits_1(tmp_path):
    result = outside(tmp_path, "from shopkeeper.cli import main; main(['status'])")

    assert result.returncode == 1
    assert "database" in result.stdout and "FAILED" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_given_a_metrics_token_then_only_its_bearer_reads_metrics(client, settings):
    settings.SHOPKEEPER_METRICS_TOKEN = TOKEN

    missing = client.get("/metrics")
    wrong = client.get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token")
    right = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert missing.status_code == wrong.status_code == 401
    assert missing["Content-Type"] == "application/problem+json"
    assert missing["WWW-Authenticate"].startswith("Bearer")
    assert right.status_code == 200 and b"shopkeeper_database_up 1.0" in right.content


def test_given_production_without_a_token_then_metrics_are_refused(client, settings):
    settings.PRODUCTION = True
    settings.SHOPKEEPER_METRICS_TOKEN = ""

    response = client.get("/metrics")

    assert response.status_code == 403 and response.json()["code"] == "metrics_disabled"


@pytest.mark.django_db
def test_given_refunds_events_and_stripe_traffic_then_metrics_show_them(
    client, fake_gateway, registered
):
    order = paid_order(fake_gateway)
    payment = order.payments.get()
    for status in ("pending", "succeeded", "succeeded"):
        Refund.objects.create(
            order=order, payment=payment, status=status, amount_minor=100, currency="USD"
        )
    now = timezone.now()
    for n, lag in enumerate((1.0, 2.0, 9.0)):
        WebhookEvent.objects.create(
            event_id=f"evt_lag_{n}",
            type="payment_intent.succeeded",
            status="processed",
            payload={},
            received_at=now - timedelta(seconds=60),
            processed_at=now - timedelta(seconds=60 - lag),
        )
    WebhookEvent.objects.create(
        event_id="evt_failed", type="charge.refunded", status="failed", payload={}
    )
    StripeRateBucket.objects.create(
        name="test", theoretical_arrival=now, requests=7, waits=2, wait_seconds=0.5, rate_limited=1
    )
    StripeRateBucket.objects.create(
        name="test POST /v1/refunds", theoretical_arrival=now, requests=4
    )
    health.register_count("jobs_failed", "Jobs that failed for good", lambda: 3)

    text = client.get("/metrics").content.decode()

    assert 'shopkeeper_refunds{status="pending"} 1.0' in text
    assert 'shopkeeper_refunds{status="succeeded"} 2.0' in text
    assert 'shopkeeper_refunds{status="failed"} 0.0' in text
    assert 'shopkeeper_webhook_processing_lag_seconds{quantile="0.5"} 2.0' in text
    assert 'shopkeeper_webhook_processing_lag_seconds{quantile="1.0"} 9.0' in text
    assert 'shopkeeper_webhook_events{status="failed"} 1.0' in text
    assert "shopkeeper_webhook_events_failed 1.0" in text
    assert 'shopkeeper_stripe_requests_total{mode="test"} 7.0' in text
    assert 'shopkeeper_stripe_rate_limited_total{mode="test"} 1.0' in text
    assert 'shopkeeper_stripe_limiter_waits_total{mode="test"} 2.0' in text
    assert 'shopkeeper_stripe_limiter_wait_seconds_total{mode="test"} 0.5' in text
    assert (
        'shopkeeper_stripe_endpoint_requests_total{endpoint="POST /v1/refunds",mode="test"} 4.0'
        in text
    )
    assert "shopkeeper_jobs_failed 3.0" in text
    assert "sk_test_" not in text


@pytest.mark.django_db
def test_given_failed_webhooks_and_a_registered_count_then_status_prints_them(capsys, registered):
    beat(1)
    WebhookEvent.objects.create(event_id="evt_f1", type="x", status="failed", payload={})
    health.register_count("jobs_failed", "Jobs that failed for good", lambda: 2)

    call_command("status")

    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:3] == ["database", "ok", "reachable"]
    assert "webhook_events_failed    1" in out
    assert "jobs_failed              2" in out
    assert "20/s (test mode)" in out
