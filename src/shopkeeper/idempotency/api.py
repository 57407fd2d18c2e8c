"""`@idempotent`: honour an `Idempotency-Key` header on a state-changing ninja endpoint.

Put it under `@requires(...)` (so refusals are not stored) and above the view:

    @router.post("/things", response={201: ThingOut})
    @requires(Permission.THINGS_MAKE)
    @idempotent
    def make_thing(request, payload: ThingIn): ...

Without the header, or for an anonymous caller, the view runs as usual. With it, the first
response (success or problem+json) is stored under the caller's key and replayed, marked
`Idempotent-Replayed: true`, to every later request with the same key and payload.

An endpoint that creates a row gives `@idempotent(answer=...)`: its service creates the row with
the claim's resource key (`services.claimed_resource_key`), and from then on every later request
with the key, and a takeover from a request that died holding it, gets `answer(request, key)`:
the row's current state (`answer` returns None while no row carries the key).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja.responses import NinjaJSONEncoder, Status
from pydantic import BaseModel

from shopkeeper.accounts.access import acting_user
from shopkeeper.errors import DomainError
from shopkeeper.idempotency.models import IdempotencyRecord
from shopkeeper.idempotency.services import (
    StoredResponse,
    claim_key,
    complete,
    current_claim,
    fingerprint,
    stored_answer,
    validated_key,
)
from shopkeeper.problems import PROBLEM_CONTENT_TYPE, problem_for

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"


Answer = Callable[[HttpRequest, uuid.UUID], Any]


def idempotent(view: Callable[..., Any] | None = None, *, answer: Answer | None = None) -> Any:
    if view is None:
        return functools.partial(idempotent, answer=answer)
    return _guarded(view, answer)


def _guarded(view: Callable[..., Any], answer: Answer | None) -> Callable[..., Any]:
    @functools.wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        raw_key = request.headers.get(HEADER)
        actor = acting_user(request)
        if raw_key is None or actor is None:
            return view(request, *args, **kwargs)
        claim = claim_key(
            owner_id=actor.pk,
            key=validated_key(raw_key),
            endpoint=f"{request.method} {request.path}"[:300],
            request_fingerprint=fingerprint(
                method=request.method or "", path=request.path, body=request.body
            ),
        )
        if claim.done is not None:
            stored = _from_row(answer, request, claim.done) or stored_answer(claim.done)
            return _replayed(stored or _internal_error())
        record = claim.record
        assert record is not None
        if claim.taken_over and (stored := _from_row(answer, request, record)) is not None:
            # Taken over from a request that died after creating its row: answer, don't redo.
            complete(record, stored)
            return _replayed(stored)
        token = current_claim.set(record) if answer is not None else None
        try:
            stored = _answered(view, request, *args, **kwargs)
        except BaseException:
            # Part of the work may be done: never run it again for this key (unless its row,
            # committed, answers it already).
            if record.state != IdempotencyRecord.State.COMPLETED:
                complete(record, _internal_error())
            raise
        finally:
            if token is not None:
                current_claim.reset(token)
        if record.state != IdempotencyRecord.State.COMPLETED:  # else settled with its row
            complete(record, stored)
        return to_http_response(stored)

    return guarded


def _from_row(
    answer: Answer | None, request: HttpRequest, record: IdempotencyRecord
) -> StoredResponse | None:
    """The answer from the row the key's request created, if the endpoint has one and it does."""
    if answer is None:
        return None
    result = answer(request, record.resource_key)
    return None if result is None else _answered(lambda _request: result, request)


def _answered(view: Callable[..., Any], request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
    try:
        return stored_response(view(request, *args, **kwargs))
    except DomainError as error:
        return stored_response(problem_for(error))


def _replayed(stored: StoredResponse) -> HttpResponse:
    response = to_http_response(stored)
    response[REPLAYED_HEADER] = "true"
    return response


def stored_response(result: Any) -> StoredResponse:
    """A view's result (`Status`, `(status, data)`, data, HttpResponse) as plain JSON to keep."""
    if isinstance(result, HttpResponse):
        content_type = result.get("Content-Type", JSON_CONTENT_TYPE)
        return StoredResponse(result.status_code, content_type, json.loads(result.content))
    if isinstance(result, Status):
        status, data = result.status_code, result.value
    else:
        status, data = result if isinstance(result, tuple) else (200, result)
    if isinstance(data, BaseModel):
        data = data.model_dump()
    text = _encode(data)
    return StoredResponse(status, JSON_CONTENT_TYPE, json.loads(text), text)


def to_http_response(stored: StoredResponse) -> HttpResponse:
    text = _encode(stored.body) if stored.text is None else stored.text
    return HttpResponse(text, status=stored.status, content_type=stored.content_type)


def _encode(data: Any) -> str:
    return json.dumps(data, cls=NinjaJSONEncoder)


def _internal_error() -> StoredResponse:
    return StoredResponse(
        500,
        PROBLEM_CONTENT_TYPE,
        {
            "type": "https://shopkeeper.dev/problems/internal_error",
            "title": "The request failed on the server; its outcome is being checked",
            "status": 500,
            "code": "internal_error",
        },
    )
