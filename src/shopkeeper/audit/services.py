"""Appending to the audit log. Call inside the transaction of the change being recorded.

Each audited object has its own chain (`order:SK-…`, `user:…`); appending locks only that
chain's head row, which for an order the change already serialises on the order's lock. No row
is shared by every audited write (docs/audit.md). An append is two statements.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from shopkeeper.audit.chain import GENESIS_HASH, chain_name, entry_hash, head_mac
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
    """Append one entry. `actor` is a user, or None with `actor_label` ("Stripe", "Customer").

    Two statements: one takes the entry's place (the chain's head, locked, and a global number),
    one writes the entry and moves the head. No savepoint: an append that fails fails the
    change it records, which is what the caller's transaction is for.
    """
    context = current_context()
    chain = chain_name(target_type, str(target_id))
    with transaction.atomic(savepoint=False):
        chain_seq, prev_hash, seq = _take_place(chain)
        content: dict[str, Any] = {
            "chain": chain,
            "chain_seq": chain_seq,
            "seq": seq,
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
        digest = entry_hash(key, prev_hash, stored_form(content))
        entry = AuditEntry(prev_hash=prev_hash, hash=digest, **content)
        _append(entry, head_mac(key, chain, chain_seq, digest))
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


_HEAD = AuditChainHead._meta.db_table
_ENTRY = AuditEntry._meta.db_table
_ENTRY_FIELDS = [f for f in AuditEntry._meta.concrete_fields if not f.primary_key]

# The chain's head row, created on its first entry, locked until the transaction ends (ON
# CONFLICT DO UPDATE locks the row and returns its newest committed version), and the next
# global number. The statement holds the head table's ROW EXCLUSIVE lock before nextval() runs:
# an anchor takes SHARE mode on the head table, so every number handed out before it belongs
# to a transaction that has finished when the anchor reads its cut (docs/audit.md).
_TAKE_PLACE = f"""
    INSERT INTO {_HEAD} AS head (chain, chain_seq, hash, mac) VALUES (%s, 0, %s, '')
    ON CONFLICT (chain) DO UPDATE SET chain_seq = head.chain_seq
    RETURNING head.chain_seq, head.hash, nextval('{SEQ_SEQUENCE}')
"""

# The entry and the head that now names it, in one statement.
_APPEND = f"""
    WITH entry AS (
        INSERT INTO {_ENTRY} ({", ".join(str(f.column) for f in _ENTRY_FIELDS)})
        VALUES ({", ".join(["%s"] * len(_ENTRY_FIELDS))})
        RETURNING id
    )
    UPDATE {_HEAD} SET chain_seq = %s, hash = %s, mac = %s FROM entry
    WHERE {_HEAD}.chain = %s
    RETURNING entry.id
"""


def _take_place(chain: str) -> tuple[int, str, int]:
    """(chain_seq, prev_hash, seq) of the entry about to be appended to `chain`."""
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_PLACE, [chain, GENESIS_HASH])
        last_seq, last_hash, seq = cursor.fetchone()
    return int(last_seq) + 1, str(last_hash), int(seq)


def _append(entry: AuditEntry, mac: str) -> None:
    values = [f.get_db_prep_save(getattr(entry, f.attname), connection) for f in _ENTRY_FIELDS]
    with connection.cursor() as cursor:
        cursor.execute(_APPEND, [*values, entry.chain_seq, entry.hash, mac, entry.chain])
        row = cursor.fetchone()
    if row is None:  # the head row was created by _take_place in this transaction
        raise RuntimeError(f"audit chain {entry.chain}: its head is missing")
    entry.pk = row[0]
    entry._state.adding = False


def stored_form(content: Mapping[str, Any]) -> dict[str, Any]:
    stored = dict(content)
    stored["created_at"] = content["created_at"].isoformat()
    return stored
