"""Requests no view should see: NUL characters anywhere (path, query, headers, a form, a JSON
body) and bodies over `SHOPKEEPER_MAX_BODY_BYTES`. Answered here, before any view or database
query, never a 500 (PostgreSQL cannot store a NUL in text, so one would otherwise fail late).
A Stripe webhook's body is left to its view: its signature comes first, then its shape
(payments.event_shape refuses a NUL with 400).

A body is refused from its Content-Length before a byte of it is read. A body without one
(chunked) is not read by Django under WSGI at all, and Django itself stops reading at
DATA_UPLOAD_MAX_MEMORY_SIZE (set to the same limit); if that trips inside a view, the
RequestDataTooBig it raises is answered 413 here too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shopkeeper.errors import BodyTooLarge, InvalidInput, NotFound
from shopkeeper.problems import problem_for, wants_problem_json

NUL = "\x00"
FORM = "application/x-www-form-urlencoded"
JSON_NUL = b"\\u0000"  # the only way JSON can carry a NUL
UNCHECKED_BODIES = ("/webhooks/",)


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _has_nul(values: dict[str, list[str]]) -> bool:
    return any(NUL in key or any(NUL in v for v in vs) for key, vs in values.items())


def _json_has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(NUL in key or _json_has_nul(v) for key, v in value.items())
    if isinstance(value, list):
        return any(_json_has_nul(item) for item in value)
    return False


def _body_has_nul(request: HttpRequest) -> bool:
    if request.path.startswith(UNCHECKED_BODIES):
        return False
    if request.content_type == FORM:
        return _has_nul(dict(request.POST.lists()))
    if "json" not in (request.content_type or "") or JSON_NUL not in request.body:
        return False
    try:  # "\\u0000" spelled out in a string is six ordinary characters, not a NUL
        return _json_has_nul(json.loads(request.body))
    except ValueError:
        return False  # not JSON: the view answers that


def _has_nul_anywhere(request: HttpRequest) -> bool:
    headers = {
        k: [v] for k, v in request.META.items() if k.startswith("HTTP_") and isinstance(v, str)
    }
    return _has_nul(dict(request.GET.lists())) or _has_nul(headers) or _body_has_nul(request)


def too_large(request: HttpRequest) -> HttpResponse:
    limit = int(settings.SHOPKEEPER_MAX_BODY_BYTES)
    error = BodyTooLarge(f"The request body is larger than {limit} bytes", limit=limit)
    if wants_problem_json(request):
        return problem_for(error)
    return render(request, "problems/too_large.html", {"limit": limit}, status=413)


class RequestGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if NUL in request.path:
            return problem_for(NotFound("No such page"))
        if _declared_length(request) > int(settings.SHOPKEEPER_MAX_BODY_BYTES):
            return too_large(request)
        if _has_nul_anywhere(request):
            return problem_for(InvalidInput("NUL characters are not allowed in a request"))
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return too_large(request) if isinstance(exception, RequestDataTooBig) else None
