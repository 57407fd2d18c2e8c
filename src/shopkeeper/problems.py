"""The one place where domain errors become HTTP: RFC 9457 problem+json for the API."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from shopkeeper.errors import (
    BodyTooLarge,
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    PaymentDeclined,
    PaymentProviderUnavailable,
    PaymentRequestInvalid,
    WebhookEventMalformed,
    WebhookSignatureInvalid,
)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Most specific first: the first class an error is an instance of gives its status.
STATUS_BY_ERROR: tuple[tuple[type[DomainError], int], ...] = (
    (WebhookSignatureInvalid, 400),
    (WebhookEventMalformed, 400),
    (PaymentDeclined, 402),
    (PaymentRequestInvalid, 502),
    (PaymentProviderUnavailable, 503),
    (BodyTooLarge, 413),
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
)


def status_for(error: DomainError) -> int:
    for error_class, status in STATUS_BY_ERROR:
        if isinstance(error, error_class):
            return status
    return 400


def problem(
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    **extra: Any,
) -> JsonResponse:
    body: dict[str, Any] = {
        "type": f"https://shopkeeper.dev/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return JsonResponse(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


# A problem's own members: an error's extra fields never overwrite them.
_MEMBERS = frozenset({"type", "title", "status", "code", "detail"})


def problem_for(error: DomainError) -> JsonResponse:
    extra = {key: value for key, value in error.extra.items() if key not in _MEMBERS}
    return problem(status_for(error), error.code, error.title, error.detail, **extra)


def wants_problem_json(request: HttpRequest) -> bool:
    """Programs (the API, Stripe's webhooks, JSON clients) get problem+json; people a page."""
    return (
        request.path.startswith(("/api/", "/webhooks/"))
        or "json" in request.headers.get("Accept", "")
        or "json" in (request.content_type or "")
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """Django's CSRF failure view: problem+json for the API, a readable page for people."""
    if wants_problem_json(request):
        return problem(403, "csrf_failed", "CSRF check failed", reason or None)
    return render(request, "problems/csrf_failed.html", {"reason": reason}, status=403)
