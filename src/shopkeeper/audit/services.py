"""Appending to the audit log. Call inside the transaction of the change being recorded."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.db import transaction
from django.utils import timezone

from shopkeeper.audit.chain import GENESIS_HASH, ChainProblem, entry_hash, verify_chain
from shopkeeper.audit.context import current_context
from shopkeeper.audit.models import AuditChainHead, AuditEntry

SYSTEM_ACTORS = {"stripe": "Stripe", "system": "Shopkeeper", "customer": "Customer"}


def record(
    *,
    action: str,
    target_type: str,
    target_id: str | int,
    target_label: str = "",
    actor: Any = None,
    actor_label: str = "",
    before: Any = None,
    after: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. `actor` is a user, or None with `actor_label` ("Stripe", "Customer")."""
    context = current_context()
    with transaction.atomic():
        head, _ = AuditChainHead.objects.select_for_update().get_or_create(id=1)
        content: dict[str, Any] = {
            "seq": head.seq + 1,
            "created_at": timezone.now(),
            "actor_id": getattr(actor, "pk", None),
            "actor_email": getattr(actor, "email", "") or actor_label,
            "action": action,
            "target_type": target_type,
            "target_id": str(target_id),
            "target_label": target_label,
            "before": before,
            "after": after,
            "details": details or {},
            "ip": context.ip,
            "user_agent": context.user_agent,
            "request_id": context.request_id,
        }
        digest = entry_hash(head.hash, _stored_form(content))
        entry = AuditEntry.objects.create(prev_hash=head.hash, hash=digest, **content)
        head.seq, head.hash = entry.seq, digest
        head.save(update_fields=["seq", "hash"])
    return entry


def record_for_order(order: Any, *, action: str, **fields: Any) -> AuditEntry:
    """An entry about an order, which is named by its number in the log and the timeline."""
    return record(
        action=action,
        target_type="order",
        target_id=order.number,
        target_label=order.number,
        **fields,
    )


def _stored_form(content: Mapping[str, Any]) -> dict[str, Any]:
    stored = dict(content)
    stored["created_at"] = content["created_at"].isoformat()
    return stored


def verify_audit_log() -> tuple[int, list[ChainProblem]]:
    """Recompute the whole chain: (number of entries, problems found).

    The chain alone cannot show that its newest entries were deleted, so the head row (seq and
    hash of the last entry appended) must also match the last entry.
    """
    rows = AuditEntry.objects.order_by("seq").values()
    count, last = 0, None

    def stored() -> Iterator[dict[str, Any]]:
        nonlocal count, last
        for row in rows.iterator():
            count, last = count + 1, row
            yield _stored_form(row)

    problems = verify_chain(stored())
    head = AuditChainHead.objects.filter(id=1).first()
    head_seq, head_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    last_seq, last_hash = (last["seq"], last["hash"]) if last else (0, GENESIS_HASH)
    if (head_seq, head_hash) != (last_seq, last_hash):
        problems.append(
            ChainProblem(
                head_seq or None,
                f"the log ends at #{last_seq} but #{head_seq} was the last entry appended "
                "(entries removed from the end, or the head edited)",
            )
        )
    return count, problems
