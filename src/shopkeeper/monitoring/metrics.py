"""The Prometheus metrics, read from PostgreSQL at each scrape (prometheus-client).

Every number here is the whole installation's, not one process's: refunds and webhook events
are rows, and the Stripe traffic is counted by the shared rate limiter in its buckets
(payments_stripe_rate_bucket), in the same statement that reserves each request's turn. So
every server answers the same values, gunicorn's workers need no multiprocess mode, and the
worker's and commands' Stripe calls are counted too (docs/operations.md: scrape one server, or
aggregate with max() rather than sum()).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from shopkeeper.health import read_counts
from shopkeeper.payments.models import StripeRateBucket
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.rules import RefundStatus
from shopkeeper.stripe_events.models import WebhookEvent

# Webhook lag is measured over the most recent events (by id, an index scan), those processed
# within the window: a bounded read whatever the table's size.
LAG_EVENTS = 1000
LAG_WINDOW = timedelta(minutes=15)
LAG_QUANTILES = (0.5, 0.95, 1.0)


class ShopkeeperCollector(Collector):
    def describe(self) -> list[Metric]:
        return []  # nothing is read at registration

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "shopkeeper_database_up", "1 when this server's last read of the database worked"
        )
        try:
            metrics = [
                *refund_metrics(),
                *webhook_metrics(),
                *stripe_metrics(),
                *count_metrics(),
            ]
        except DatabaseError:
            connection.close()
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics


def refund_metrics() -> list[Metric]:
    by_status = dict(
        Refund.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    refunds = GaugeMetricFamily("shopkeeper_refunds", "Refunds by status", labels=["status"])
    for status in RefundStatus:
        refunds.add_metric([status.value], by_status.get(status.value, 0))
    return [refunds]


def webhook_metrics() -> list[Metric]:
    by_status = dict(
        WebhookEvent.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    events = GaugeMetricFamily(
        "shopkeeper_webhook_events", "Stored Stripe events by status", labels=["status"]
    )
    for status in sorted({*WebhookEvent.Status.values, *by_status}):
        events.add_metric([status], by_status.get(status, 0))
    lags, oldest = _recent_lags()
    lag = GaugeMetricFamily(
        "shopkeeper_webhook_processing_lag_seconds",
        "Seconds from receiving a Stripe event to processing it, over the events processed in "
        f"the last {LAG_WINDOW.seconds // 60} minutes (of the latest {LAG_EVENTS})",
        labels=["quantile"],
    )
    for q in LAG_QUANTILES:
        lag.add_metric([str(q)], _quantile(lags, q))
    unprocessed = GaugeMetricFamily(
        "shopkeeper_webhook_oldest_unprocessed_seconds",
        f"Age of the oldest of the latest {LAG_EVENTS} events neither processed nor failed",
    )
    unprocessed.add_metric([], oldest)
    return [events, lag, unprocessed]


def _recent_lags() -> tuple[list[float], float]:
    now = timezone.now()
    recent = WebhookEvent.objects.order_by("-id").values_list(
        "status", "received_at", "processed_at"
    )[:LAG_EVENTS]
    lags, oldest = [], 0.0
    for status, received_at, processed_at in recent:
        if processed_at is None:
            if status != WebhookEvent.Status.FAILED:
                oldest = max(oldest, (now - received_at).total_seconds())
        elif processed_at >= now - LAG_WINDOW:
            lags.append(max(0.0, (processed_at - received_at).total_seconds()))
    return sorted(lags), oldest


def _quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile; 0 when there is nothing to measure."""
    if not ordered:
        return 0.0
    rank = max(1, round(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def stripe_metrics() -> list[Metric]:
    mode = "test" if settings.STRIPE_TEST_MODE else "live"
    limit = GaugeMetricFamily(
        "shopkeeper_stripe_limit_requests_per_second",
        "STRIPE_MAX_REQUESTS_PER_SECOND (0: the shared limiter is off)",
    )
    limit.add_metric([], settings.STRIPE_MAX_REQUESTS_PER_SECOND)
    requests = CounterMetricFamily(
        "shopkeeper_stripe_requests", "Requests sent to Stripe by every process", labels=["mode"]
    )
    rate_limited = CounterMetricFamily(
        "shopkeeper_stripe_rate_limited", "429 answers from Stripe", labels=["mode"]
    )
    waits = CounterMetricFamily(
        "shopkeeper_stripe_limiter_waits", "Requests that waited for their turn", labels=["mode"]
    )
    waited = CounterMetricFamily(
        "shopkeeper_stripe_limiter_wait_seconds",
        "Seconds requests waited for their turn, in all",
        labels=["mode"],
    )
    endpoints = CounterMetricFamily(
        "shopkeeper_stripe_endpoint_requests",
        "Requests sent to Stripe, by endpoint",
        labels=["mode", "endpoint"],
    )
    buckets = list(StripeRateBucket.objects.filter(name__startswith=mode).order_by("name"))
    account = next((b for b in buckets if b.name == mode), StripeRateBucket(name=mode))
    requests.add_metric([mode], account.requests)
    rate_limited.add_metric([mode], account.rate_limited)
    waits.add_metric([mode], account.waits)
    waited.add_metric([mode], account.wait_seconds)
    for bucket in buckets:
        if bucket.name.startswith(f"{mode} "):
            endpoints.add_metric([mode, bucket.name[len(mode) + 1 :]], bucket.requests)
    return [limit, requests, rate_limited, waits, waited, endpoints]


def count_metrics() -> list[Metric]:
    metrics: list[Metric] = []
    for name, (count, value) in read_counts().items():
        gauge = GaugeMetricFamily(f"shopkeeper_{name}", count.help)
        gauge.add_metric([], value)
        metrics.append(gauge)
    return metrics


REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(ShopkeeperCollector())
