"""POST /webhooks/stripe: verify the signature, then store and handle the event (processing).

The signature is checked before anything else: a bad or stale one is answered 400 and leaves
nothing but a log line. A handler that fails leaves the event stored as failed and answers 500
so Stripe retries.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shopkeeper.errors import DomainError
from shopkeeper.payments.provider import get_gateway
from shopkeeper.problems import problem, problem_for
from shopkeeper.stripe_events.processing import process_event, store_failure

logger = logging.getLogger(__name__)


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        event = get_gateway().parse_webhook(
            request.body, request.headers.get("Stripe-Signature", "")
        )
    except DomainError as error:
        logger.warning("Rejected a Stripe webhook: %s", error.detail)
        return problem_for(error)
    try:
        status = process_event(event)
    except Exception as error:
        logger.exception("Stripe event %s (%s) failed", event.id, event.type)
        store_failure(event.id, event.type, dict(event.payload), error)
        return problem(
            500,
            "webhook_handler_failed",
            "The event was stored as failed; Stripe will deliver it again",
            event_id=event.id,
        )
    return JsonResponse({"received": True, "status": status or "duplicate"})
