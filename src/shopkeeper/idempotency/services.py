"""Idempotency-Key: a client's retry of a request gets the first response, not a second effect.

The first request with a key claims it by inserting a row (committed at once, before the work
starts; a unique constraint makes the claim race-free). A request arriving with the same key
and the same payload waits for the first one to finish and replays its response; with another
payload it is refused with 422 `idempotency_key_reused`. Like Stripe, the response is kept
whatever its status: a request that failed after part of its work was done must not run again.

A claim is a lease (SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS, longer than any request can run): a
request killed while holding its key cannot finish it, so after the lease the same key takes
the claim over. A request that created a row links it to its claim in the same transaction
(`link_claim`); from then on the key answers from that row's current state (a refund request:
the refund, as it is now, settled later by the worker, a webhook or reconcile), so a takeover
answers instead of running again.
"""

from __future__ import annotations

import hashlib
import json
import time
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from shopkeeper.errors import Conflict, InvalidInput
from shopkeeper.idempotency.models import IdempotencyRecord, lease_end

MAX_KEY_LENGTH = 255
POLL_SECONDS = 0.05


class IdempotencyKeyReused(InvalidInput):
    code = "idempotency_key_reused"
    title = "This Idempotency-Key was already used for a different request"


class IdempotencyKeyInProgress(Conflict):
    code = "idempotency_key_in_progress"
    title = "A request with this Idempotency-Key is still being processed; retry shortly"


class InvalidIdempotencyKey(InvalidInput):
    code = "invalid_idempotency_key"
    title = "The Idempotency-Key header must be 1 to 255 printable ASCII characters"


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    content_type: str
    body: Any


@dataclass(frozen=True, slots=True)
class Claim:
    """The caller now owns the key (`record`: to run the request, or, when the record names a
    resource, to answer from it), or the answer to replay (`replay`), or the resource whose
    current state is the answer (`resource_id`)."""

    record: IdempotencyRecord | None = None
    replay: StoredResponse | None = None
    resource_id: int | None = None


# The claim of the request running in this thread (set by `idempotency.api.idempotent`).
current_claim: ContextVar[IdempotencyRecord | None] = ContextVar("current_claim", default=None)


def link_claim(resource_id: int) -> None:
    """Name the row the current request created; call it in the transaction creating the row,
    so the link commits with it. Does nothing for a request without an Idempotency-Key."""
    record = current_claim.get()
    if record is not None:
        IdempotencyRecord.objects.filter(pk=record.pk).update(resource_id=resource_id)
        record.resource_id = resource_id


def validated_key(raw: str) -> str:
    key = raw.strip()
    if not 0 < len(key) <= MAX_KEY_LENGTH or not all(32 < ord(c) < 127 for c in key):
        raise InvalidIdempotencyKey()
    return key


def fingerprint(*, method: str, path: str, body: bytes) -> str:
    """SHA-256 of the request: the same JSON with keys in another order is the same request."""
    try:
        content: Any = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError):
        content = body.hex()
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "body": content},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def claim_key(*, owner_id: int, key: str, endpoint: str, request_fingerprint: str) -> Claim:
    """Claim `key` for this request, or wait for the request that holds it and replay it, or
    take it over from a request whose lease ran out."""
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                owner_id=owner_id, key=key, endpoint=endpoint, fingerprint=request_fingerprint
            )
        return Claim(record=record)
    except IntegrityError:
        pass
    return _wait_for_response(owner_id, key, request_fingerprint)


def _wait_for_response(owner_id: int, key: str, request_fingerprint: str) -> Claim:
    deadline = time.monotonic() + settings.SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS
    while True:
        record = IdempotencyRecord.objects.get(owner_id=owner_id, key=key)
        if record.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {key!r} was first used for {record.endpoint} with another body"
            )
        if record.state == IdempotencyRecord.State.COMPLETED:
            return _answer(record)
        if record.lease_expires_at <= timezone.now() and _take_over(record):
            return Claim(record=record)
        if time.monotonic() >= deadline:
            raise IdempotencyKeyInProgress()
        time.sleep(POLL_SECONDS)


def _answer(record: IdempotencyRecord) -> Claim:
    assert record.response_status is not None
    stored = StoredResponse(
        status=record.response_status,
        content_type=record.response_content_type,
        body=record.response_body,
    )
    return Claim(replay=stored, resource_id=record.resource_id)


def _take_over(record: IdempotencyRecord) -> bool:
    """Renew a lapsed lease for this request; one UPDATE, so one of many retries wins it."""
    lease = lease_end()
    taken = IdempotencyRecord.objects.filter(
        pk=record.pk,
        state=IdempotencyRecord.State.IN_PROGRESS,
        lease_expires_at=record.lease_expires_at,
    ).update(lease_expires_at=lease)
    record.lease_expires_at = lease
    return taken == 1


def complete(record: IdempotencyRecord, response: StoredResponse) -> None:
    record.state = IdempotencyRecord.State.COMPLETED
    record.response_status = response.status
    record.response_content_type = response.content_type
    record.response_body = response.body
    record.completed_at = timezone.now()
    record.save(
        update_fields=[
            "state",
            "response_status",
            "response_content_type",
            "response_body",
            "completed_at",
        ]
    )


def purge_records(*, older_than_hours: float = 24) -> int:
    """Forget completed keys older than `older_than_hours` (Stripe prunes its keys after 24 h)."""
    cutoff = timezone.now() - timedelta(hours=older_than_hours)
    deleted, _ = IdempotencyRecord.objects.filter(
        state=IdempotencyRecord.State.COMPLETED, created_at__lt=cutoff
    ).delete()
    return deleted
