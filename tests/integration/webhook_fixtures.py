"""Delivering signed Stripe events to POST /webhooks/stripe, as Stripe does: no cookies, no CSRF
token, the `Stripe-Signature` header over the raw body; then, like the worker, processing what
the webhook deferred (tests.jobs.run_jobs)."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from shopkeeper.stripe_events.models import WebhookEvent
from tests.fakes import sign_payload
from tests.jobs import run_jobs

URL = "/webhooks/stripe"


def deliver(payload: bytes, signature: str | None = None) -> Any:
    """The POST alone: the event is stored and its processing deferred, not run."""
    headers = {"HTTP_STRIPE_SIGNATURE": sign_payload(payload) if signature is None else signature}
    return Client(enforce_csrf_checks=True).post(
        URL, data=payload, content_type="application/json", **headers
    )


def deliver_ok(payload: bytes) -> str:
    """Deliver (Stripe must get a 2xx), then run the deferred jobs, retries included.

    Returns the event's status after them: processed | ignored | failed (every try failed), or
    duplicate (already stored: nothing deferred).
    """
    response = deliver(payload)
    assert response.status_code == 200, response.content
    if response.json()["status"] == "duplicate":
        return "duplicate"
    assert response.json()["status"] == "received", response.content
    run_jobs()
    return str(WebhookEvent.objects.get(event_id=json.loads(payload)["id"]).status)
