"""POST /webhooks/stripe: verify, de-duplicate by event id, dispatch by type.

The event row and its effects commit in one transaction, so a duplicate delivery finds the row
and changes nothing. A handler that fails leaves the event stored as failed and answers 500 so
Stripe retries. Types we do not handle are stored as ignored and answered 200.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from shopkeeper.errors import DomainError
from shopkeeper.payments.gateway import GatewayEvent, get_gateway
from shopkeeper.payments.models import WebhookEvent
from shopkeeper.payments.services import apply_intent
from shopkeeper.problems import problem, problem_for
from shopkeeper.refunds.settlement import settle_refund_event

logger = logging.getLogger(__name__)

Handler = Callable[[GatewayEvent], None]


def _apply_intent_event(event: GatewayEvent) -> None:
    if event.intent is None:
        raise ValueError(f"{event.type} carries no PaymentIntent")
    apply_intent(event.intent, source="webhook")


HANDLERS: dict[str, Handler] = {
    "payment_intent.succeeded": _apply_intent_event,
    "payment_intent.amount_capturable_updated": _apply_intent_event,
    "payment_intent.payment_failed": _apply_intent_event,
    "payment_intent.canceled": _apply_intent_event,
    # Refund news (ours or made in the Stripe dashboard): refunds.settlement records it.
    "refund.created": settle_refund_event,
    "refund.updated": settle_refund_event,
    "refund.failed": settle_refund_event,
    "charge.refund.updated": settle_refund_event,
}


def process_event(event: GatewayEvent) -> WebhookEvent.Status | None:
    """Store and handle one verified event. None means it was already stored (a duplicate)."""
    handler = HANDLERS.get(event.type)
    status = WebhookEvent.Status.PROCESSED if handler else WebhookEvent.Status.IGNORED
    try:
        with transaction.atomic():
            WebhookEvent.objects.create(
                event_id=event.id,
                type=event.type,
                status=status,
                payload=dict(event.payload),
                processed_at=timezone.now(),
            )
            if handler is not None:
                handler(event)
    except IntegrityError:
        if WebhookEvent.objects.filter(event_id=event.id).exists():
            existing = WebhookEvent.objects.get(event_id=event.id)
            if existing.status != WebhookEvent.Status.FAILED:
                return None
            return _retry_failed(existing, event, handler)
        raise
    return status


def _retry_failed(
    stored: WebhookEvent, event: GatewayEvent, handler: Handler | None
) -> WebhookEvent.Status:
    with transaction.atomic():
        locked = WebhookEvent.objects.select_for_update().get(pk=stored.pk)
        if locked.status != WebhookEvent.Status.FAILED:
            return WebhookEvent.Status(locked.status)
        if handler is not None:
            handler(event)
        locked.status, locked.error = WebhookEvent.Status.PROCESSED, ""
        locked.processed_at = timezone.now()
        locked.save(update_fields=["status", "error", "processed_at"])
    return WebhookEvent.Status.PROCESSED


def _store_failure(event: GatewayEvent, error: Exception) -> None:
    WebhookEvent.objects.update_or_create(
        event_id=event.id,
        defaults={
            "type": event.type,
            "status": WebhookEvent.Status.FAILED,
            "payload": dict(event.payload),
            "error": f"{type(error).__name__}: {error}"[:2000],
        },
    )


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
        _store_failure(event, error)
        return problem(
            500,
            "webhook_handler_failed",
            "The event was stored as failed; Stripe will deliver it again",
            event_id=event.id,
        )
    return JsonResponse({"received": True, "status": status or "duplicate"})
