"""POST /webhooks/stripe: verify the signature, store the event and defer its processing, answer.

The signature is checked before anything else: a bad or stale one is answered 400 and leaves
nothing but a log line. A verified event is stored under its unique id and its processing job
deferred in one transaction (receiving), then answered 200 `received` (or `duplicate`): Stripe
waits for no handler, and a handler's failure is retried by the worker, not by Stripe. Only an
event that could not be stored is answered 500, so that Stripe delivers it again.
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shopkeeper.errors import DomainError
from shopkeeper.payments.provider import get_gateway
from shopkeeper.problems import problem, problem_for
from shopkeeper.stripe_events.receiving import receive_event

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
        stored = receive_event(event)
    except Exception:
        logger.exception("Stripe event %s (%s) could not be stored", event.id, event.type)
        return problem(
            500,
            "webhook_not_stored",
            "The event could not be stored; Stripe will deliver it again",
            event_id=event.id,
        )
    return JsonResponse({"received": True, "status": "received" if stored else "duplicate"})
