"""/healthz, /readyz and /metrics: for load balancers and Prometheus, never a 500.

- /healthz: the process answers (200); it reads nothing, not even the database.
- /readyz: every registered check (shopkeeper.health) passes: 200, else 503; a JSON body either
  way, e.g. {"status": "unready", "checks": {"database": {"ok": false, "detail": ...}}}.
- /metrics: Prometheus' text format, to a request bearing SHOPKEEPER_METRICS_TOKEN.
"""

from __future__ import annotations

import hmac
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shopkeeper.health import run_checks
from shopkeeper.monitoring.metrics import REGISTRY
from shopkeeper.problems import problem

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "alive"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    results = run_checks()
    ready = all(result.ok for result in results)
    body = {
        "status": "ready" if ready else "unready",
        "checks": {r.name: {"ok": r.ok, "detail": r.detail} for r in results},
    }
    return JsonResponse(body, status=200 if ready else 503)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    try:
        output = generate_latest(REGISTRY)
    except Exception:
        logger.exception("/metrics: collecting failed")
        return problem(503, "metrics_unavailable", "The metrics could not be collected")
    return HttpResponse(output, content_type=CONTENT_TYPE_LATEST)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    token = settings.SHOPKEEPER_METRICS_TOKEN
    if not token:
        if settings.PRODUCTION:
            return problem(
                403,
                "metrics_disabled",
                "Metrics are off",
                "Set SHOPKEEPER_METRICS_TOKEN to serve /metrics",
            )
        return None
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(offered.strip().encode(), token.encode()):
        return None
    response = problem(401, "metrics_unauthorized", "A bearer token is needed for /metrics")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
