"""Entries from before the keyed chains are checked against the old chain and re-sealed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.audit_fixtures import verify

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("audit", "0002_append_only_trigger")]


@pytest.fixture
def legacy_log() -> Iterator[Any]:
    """The database as the unkeyed release left it; migrated forward again afterwards."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    try:
        yield executor.loader.project_state(BEFORE).apps
    finally:
        with connection.cursor() as cursor:  # a refused migration leaves its rows behind
            cursor.execute("SET session_replication_role = replica")
            cursor.execute("DELETE FROM audit_auditentry")
            cursor.execute("DELETE FROM audit_auditchainhead")
            cursor.execute("SET session_replication_role = DEFAULT")
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def write_legacy(apps: Any, targets: list[str]) -> None:
    entry, head = apps.get_model("audit", "AuditEntry"), apps.get_model("audit", "AuditChainHead")
    prev = "0" * 64
    for seq, target in enumerate(targets, start=1):
        content = {"seq": seq, "created_at": timezone.now(), "actor_id": None, "actor_email": ""}
        content |= {"action": "order.note", "target_type": "order", "target_id": target}
        content |= {"target_label": target, "before": None, "after": {"n": seq}, "details": {}}
        content |= {"ip": None, "user_agent": "", "request_id": ""}
        canonical = dict(content)
        canonical["created_at"] = content["created_at"].isoformat()
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.sha256(f"{prev}|{text}".encode()).hexdigest()
        entry.objects.create(prev_hash=prev, hash=digest, **content)
        prev = digest
    head.objects.create(id=1, seq=len(targets), hash=prev)


def test_given_a_sound_legacy_log_when_migrated_then_each_object_has_its_keyed_chain(legacy_log):
    write_legacy(legacy_log, ["SK-A", "SK-B", "SK-A"])

    MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from shopkeeper.audit.models import AuditEntry

    chains = list(AuditEntry.objects.order_by("seq").values_list("seq", "chain", "chain_seq"))
    assert chains == [(1, "order:SK-A", 1), (2, "order:SK-B", 1), (3, "order:SK-A", 2)]
    assert verify() == (0, "OK 3 entries\n")
    from shopkeeper.audit.services import record

    assert record(action="order.note", target_type="order", target_id="SK-A").seq == 4


def test_given_a_tampered_legacy_log_then_the_migration_refuses_to_seal_it(legacy_log):
    write_legacy(legacy_log, ["SK-A", "SK-B"])
    legacy_log.get_model("audit", "AuditChainHead").objects.update(seq=1)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE audit_auditentry SET action = 'order.forged' WHERE seq = 1")
        cursor.execute("SET session_replication_role = DEFAULT")

    with pytest.raises(RuntimeError, match="audit entry #1 does not match the old hash chain"):
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
