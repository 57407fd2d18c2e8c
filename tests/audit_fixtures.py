"""Audit log set-up and the attacker's tools, for the audit tests.

The attacker is a database superuser: they switch the append-only trigger off for their session
(`session_replication_role = replica`, as `pg_dump`/replication tooling does) and edit rows at
will. They have the database, but not SHOPKEEPER_AUDIT_KEY.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from shopkeeper.audit.chain import entry_hash, head_mac
from shopkeeper.audit.models import AuditChainHead, AuditEntry
from shopkeeper.audit.services import record, stored_form

ATTACKER_KEY = b"the attacker's best guess at the key"


def add_entries(count: int, *, target: str | None = None) -> list[AuditEntry]:
    """`count` entries, on one order's chain when `target` is given, else one chain each."""
    return [
        record(
            action="order.note",
            target_type="order",
            target_id=target or f"SK-{n}",
            actor_label="tester",
            before={"n": n},
            after={"n": n + 1, "nested": {"b": 1, "a": [1, 2]}},
            details={"text": "ünïcode ✓"},
        )
        for n in range(count)
    ]


def audit(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("audit", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


def verify(anchor: Path | None = None) -> tuple[int, str]:
    return audit("verify", *(["--anchor", str(anchor)] if anchor else []))


def write_anchor(path: Path) -> dict[str, Any]:
    code, output = audit("anchor", "--output", str(path))
    assert code == 0, output
    return dict(json.loads(path.read_text()))


@contextmanager
def as_superuser() -> Iterator[None]:
    """The append-only trigger must be switched off to tamper at all."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")


def head_of(chain: str) -> dict[str, Any]:
    return dict(AuditChainHead.objects.filter(chain=chain).values().get())


def delete_newest_and_set_head_back(chain: str, *, head: dict[str, Any] | None = None) -> None:
    """Remove a chain's newest entry and point its head at the one before — with `head`, a
    copy of the head row as it was then (from a backup); without, the best forgery possible."""
    newest, previous = AuditEntry.objects.filter(chain=chain).order_by("-chain_seq")[:2]
    with as_superuser():
        AuditEntry.objects.filter(pk=newest.pk).delete()
        back = head or {"chain_seq": previous.chain_seq, "hash": previous.hash}
        AuditChainHead.objects.filter(chain=chain).update(**back)


def rehash_without_the_key(chain: str) -> None:
    """Recompute every hash of a chain and its head with the attacker's guess at the key."""
    prev = "0" * 64
    with as_superuser():
        for row in AuditEntry.objects.filter(chain=chain).order_by("chain_seq").values():
            digest = entry_hash(ATTACKER_KEY, prev, stored_form(row))
            AuditEntry.objects.filter(pk=row["id"]).update(prev_hash=prev, hash=digest)
            prev = digest
        head = AuditChainHead.objects.get(chain=chain)
        forged = head_mac(ATTACKER_KEY, chain, head.chain_seq, prev)
        AuditChainHead.objects.filter(chain=chain).update(hash=prev, mac=forged)


def delete_everything() -> None:
    with as_superuser():
        AuditEntry.objects.all().delete()
        AuditChainHead.objects.all().delete()
