"""Appending to the audit log. Call inside the transaction of the change being recorded.

Each audited object has its own chain (`order:SK-…`, `user:…`); appending locks only that
chain's head row, which for an order the change already serialises on the order's lock. No row
is shared by every audited write (docs/audit.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from shopkeeper.audit.chain import chain_name, entry_hash, head_mac
from shopkeeper.audit.context import current_context
from shopkeeper.audit.models import AuditChainHead, AuditEntry

SEQ_SEQUENCE = "audit_entry_seq"


class Recordable(Protocol):
    """What the audit log keeps of whoever acts: their id and a copy of their e-mail. (Staff
    users are one; audit sits below accounts, so it names only what it reads.)"""

    pk: Any
    email: str


def audit_key() -> bytes:
    return str(settings.SHOPKEEPER_AUDIT_KEY).encode()


def record(
    *,
    action: str,
    target_type: str,
    target_id: str | int,
    target_label: str = "",
    actor: Recordable | None = None,
    actor_label: str = "",
    before: Any = None,
    after: Any = None,
    details: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. `actor` is a user, or None with `actor_label` ("Stripe", "Customer")."""
    context = current_context()
    chain = chain_name(target_type, str(target_id))
    with transaction.atomic():
        head = _locked_head(chain)
        content: dict[str, Any] = {
            "chain": chain,
            "chain_seq": head.chain_seq + 1,
            "seq": _next_seq(),
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
        key = audit_key()
        digest = entry_hash(key, head.hash, stored_form(content))
        entry = AuditEntry.objects.create(prev_hash=head.hash, hash=digest, **content)
        head.chain_seq, head.hash = entry.chain_seq, digest
        head.mac = head_mac(key, chain, entry.chain_seq, digest)
        head.save(update_fields=["chain_seq", "hash", "mac"])
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


def _locked_head(chain: str) -> AuditChainHead:
    """The chain's head, created on its first entry, locked until the transaction ends."""
    AuditChainHead.objects.bulk_create([AuditChainHead(chain=chain)], ignore_conflicts=True)
    return AuditChainHead.objects.select_for_update().get(chain=chain)


def _next_seq() -> int:
    """The next global sequence number, taken without waiting on any other writer.

    The table's ROW EXCLUSIVE lock (the one every INSERT takes, which never
    conflicts with another writer) is taken before the number, so an anchor that takes SHARE
    mode knows that every number handed out before it belongs to a finished transaction.
    """
    with connection.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {AuditEntry._meta.db_table} IN ROW EXCLUSIVE MODE")
        cursor.execute("SELECT nextval(%s)", [SEQ_SEQUENCE])
        return int(cursor.fetchone()[0])


def stored_form(content: Mapping[str, Any]) -> dict[str, Any]:
    stored = dict(content)
    stored["created_at"] = content["created_at"].isoformat()
    return stored
