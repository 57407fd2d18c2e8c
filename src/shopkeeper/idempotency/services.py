"""Idempotency-Key: a client's retry of a request gets the first response, not a second effect.

The first request with a key claims it by inserting a row (committed at once, before the work
starts; a unique constraint makes the claim race-free). A request arriving with the same key
and the same payload waits for the first one to finish and replays its response; with another
payload it is refused with 422 `idempotency_key_reused`. Like Stripe, the response is kept
whatever its status: a request that failed after part of its work was done must not run again.

A claim is a lease (SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS, longer than any request can run): a
request killed while holding its key cannot finish it, so after the lease the same key takes
the claim over. An endpoint that creates a row gives the row the claim's `resource_key`
(`claimed_resource_key`): the row and that link commit together, with no write to the claim,
and from then on the key answers from that row's current state (a refund request: the refund,
as it is now, settled later by the worker, a webhook or reconcile), so a takeover answers
instead of running again. The transaction recording the request's outcome settles the claim
(`settle_claim`), so no commit of its own is spent on it.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from shopkeeper.errors import Conflict, InvalidInput
from shopkeeper.idempotency.models import IdempotencyRecord, lease_end
from shopkeeper.inserts import insert_unless_conflict

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
    # The body as JSON text when it was just encoded (not kept): answered as it is.
    text: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Claim:
    """The caller now owns the key (`record`: to run the request, or to answer from the row it
    names), or the key's request has finished (`done`: replay its stored answer, or answer from
    the row it names)."""

    record: IdempotencyRecord | None = None
    done: IdempotencyRecord | None = None
    taken_over: bool = False


# The claim of the request running in this thread, for an endpoint whose answer is the row it
# creates (set by `idempotency.api.idempotent(answer=...)`).
current_claim: ContextVar[IdempotencyRecord | None] = ContextVar("current_claim", default=None)


def claimed_resource_key() -> uuid.UUID | None:
    """The key the row this request creates must carry, so that its Idempotency-Key answers
    from it once it is committed; None for a request without one."""
    record = current_claim.get()
    return None if record is None else record.resource_key


def settle_claim(resource_key: uuid.UUID) -> None:
    """Call in the transaction that records the outcome of the row `resource_key` names: the
    request's key is answered by that row from the commit on. Nothing for other requests."""
    record = current_claim.get()
    if record is None or record.resource_key != resource_key:
        return
    record.state = IdempotencyRecord.State.COMPLETED
    record.completed_at = timezone.now()
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=record.state, completed_at=record.completed_at
    )


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
    record = IdempotencyRecord(
        owner_id=owner_id, key=key, endpoint=endpoint, fingerprint=request_fingerprint
    )
    if insert_unless_conflict(record, "owner_id", "key"):  # one statement, committed
        return Claim(record=record)
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
            return Claim(done=record)
        if record.lease_expires_at <= timezone.now() and _take_over(record):
            return Claim(record=record, taken_over=True)
        if time.monotonic() >= deadline:
            raise IdempotencyKeyInProgress()
        time.sleep(POLL_SECONDS)


def stored_answer(record: IdempotencyRecord) -> StoredResponse | None:
    """The response kept for a finished request; None when it was settled by its row."""
    if record.response_status is None:
        return None
    return StoredResponse(
        status=record.response_status,
        content_type=record.response_content_type,
        body=record.response_body,
    )


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
