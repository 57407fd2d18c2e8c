"""Requests no view should see: NUL bytes in the path, the query or a form, and bodies over
`SHOPKEEPER_MAX_BODY_BYTES`. Answered here, before any view or database query, never a 500.

A body is refused from its Content-Length before a byte of it is read. A body without one
(chunked) is not read by Django under WSGI at all, and Django itself stops reading at
DATA_UPLOAD_MAX_MEMORY_SIZE (set to the same limit); if that trips inside a view, the
RequestDataTooBig it raises is answered 413 here too.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shopkeeper.errors import BodyTooLarge, InvalidInput, NotFound
from shopkeeper.problems import problem_for, wants_problem_json

NUL = "\x00"
FORM = "application/x-www-form-urlencoded"


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _has_nul(values: dict[str, list[str]]) -> bool:
    return any(NUL in key or any(NUL in v for v in vs) for key, vs in values.items())


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
        if _has_nul(dict(request.GET.lists())) or (
            request.content_type == FORM and _has_nul(dict(request.POST.lists()))
        ):
            return problem_for(InvalidInput("NUL bytes are not allowed in parameters"))
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        return too_large(request) if isinstance(exception, RequestDataTooBig) else None
