"""Delivering signed Stripe events to POST /webhooks/stripe, as Stripe does: no cookies, no CSRF
token, the `Stripe-Signature` header over the raw body."""

from __future__ import annotations

from typing import Any

from django.test import Client

from tests.fakes import sign_payload

URL = "/webhooks/stripe"


def deliver(payload: bytes, signature: str | None = None) -> Any:
    headers = {"HTTP_STRIPE_SIGNATURE": sign_payload(payload) if signature is None else signature}
    return Client(enforce_csrf_checks=True).post(
        URL, data=payload, content_type="application/json", **headers
    )


def deliver_ok(payload: bytes) -> str:
    """Deliver; Stripe must get a 2xx. Returns processed | ignored | duplicate."""
    response = deliver(payload)
    assert response.status_code == 200, response.content
    return str(response.json()["status"])
