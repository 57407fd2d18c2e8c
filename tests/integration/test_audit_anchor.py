"""`audit anchor` signs the log's cut for off-site keeping; `audit verify --anchor` checks it."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection, connections, transaction

from shopkeeper.audit.models import AuditEntry
from shopkeeper.audit.services import record
from tests.audit_fixtures import add_entries, as_superuser, audit, verify, write_anchor

pytestmark = pytest.mark.django_db


def test_given_a_log_when_anchored_then_the_anchor_is_small_signed_json(tmp_path: Path):
    entries = add_entries(3) + add_entries(2, target="SK-ONE")

    code, output = audit("anchor")

    assert code == 0
    anchor = json.loads(output)
    assert set(anchor) == {
        "version",
        "seq",
        "entries",
        "chains",
        "digest",
        "created_at",
        "signature",
    }
    assert (anchor["seq"], anchor["entries"], anchor["chains"]) == (entries[-1].seq, 5, 4)
    assert len(anchor["digest"]) == len(anchor["signature"]) == 64


def test_given_an_anchor_when_the_log_grows_then_verify_with_it_still_holds(tmp_path: Path):
    add_entries(2, target="SK-ONE")
    anchor = tmp_path / "anchor.json"
    body = write_anchor(anchor)
    add_entries(2, target="SK-ONE")
    add_entries(2)

    code, output = verify(anchor)

    assert (code, output) == (
        0,
        f"OK 6 entries (anchor #{body['seq']} of {body['created_at']} holds)\n",
    )


def test_given_an_empty_log_then_its_anchor_verifies(tmp_path: Path):
    anchor = tmp_path / "anchor.json"
    assert write_anchor(anchor)["entries"] == 0
    assert verify(anchor)[0] == 0


def test_given_a_broken_log_then_anchor_refuses_to_sign_it():
    entries = add_entries(2, target="SK-ONE")
    with as_superuser():
        AuditEntry.objects.filter(pk=entries[0].pk).update(action="order.forged")

    code, output = audit("anchor")

    assert code == 1
    assert "the log is not anchored; run `shopkeeper audit verify`" in output


@pytest.mark.parametrize("content", ["not json", "[]", '{"seq": 1}'])
def test_given_an_unreadable_anchor_file_then_verify_exits_2(tmp_path: Path, content: str):
    anchor = tmp_path / "anchor.json"
    anchor.write_text(content)
    code, output = verify(anchor)
    assert code == 2
    assert f"anchor {anchor}:" in output


def test_given_an_anchor_signed_with_another_key_then_verify_refuses_it(tmp_path: Path, settings):
    add_entries(1)
    anchor = tmp_path / "anchor.json"
    write_anchor(anchor)
    settings.SHOPKEEPER_AUDIT_KEY = "another-key"

    code, output = verify(anchor)

    assert code == 2
    assert "signature invalid" in output


@pytest.mark.django_db(transaction=True)
def test_given_an_open_audited_write_on_order_a_then_one_on_order_b_does_not_wait_for_it():
    """No row that every audited write locks: B's write completes while A's transaction is open
    (and, as a control, a second write on A itself does wait for A's head)."""
    holding, release = threading.Event(), threading.Event()

    def write_on_a() -> None:
        try:
            with transaction.atomic():
                record(action="order.note", target_type="order", target_id="SK-A")
                holding.set()
                release.wait(10)
        finally:
            connections["default"].close()

    writer = threading.Thread(target=write_on_a)
    writer.start()
    try:
        assert holding.wait(10)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            entry = record(action="order.note", target_type="order", target_id="SK-B")
        assert entry.chain == "order:SK-B"
        with pytest.raises(OperationalError, match="lock timeout"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL lock_timeout = '300ms'")
            record(action="order.note", target_type="order", target_id="SK-A")
    finally:
        release.set()
        writer.join(10)
    assert verify() == (0, "OK 2 entries\n")


def test_given_the_audit_key_in_a_log_record_then_the_secret_watch_sees_it(settings):
    import logging

    from tests.secret_watch import SecretWatch

    settings.SHOPKEEPER_AUDIT_KEY = "an-audit-key-nobody-may-see-0123"
    watch = SecretWatch()  # handed records directly: the session's own watch must not see them
    for text in ("sealing with an-audit-key-nobody-may-see-0123", "sealing"):
        watch.handle(logging.LogRecord("t", logging.INFO, __file__, 1, text, None, None))

    assert len(watch.sightings) == 1
    add_entries(1)
    assert settings.SHOPKEEPER_AUDIT_KEY not in audit("anchor")[1] + verify()[1]


@pytest.mark.django_db(transaction=True)
def test_given_an_entry_still_uncommitted_below_newer_ones_then_the_anchor_waits_and_covers_it(
    tmp_path: Path,
):
    """A writer takes number n, a second writer n+1 and commits, the first is still open: an
    anchor cut at n+1 without n would later fail against the log. The anchor waits for it."""
    from shopkeeper.audit.verification import make_anchor

    holding, release, anchored = threading.Event(), threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def write_and_hold() -> None:
        try:
            with transaction.atomic():
                record(action="order.note", target_type="order", target_id="SK-SLOW")
                holding.set()
                release.wait(10)
        finally:
            connections["default"].close()

    def anchor() -> None:
        try:
            result.update(make_anchor())
            anchored.set()
        finally:
            connections["default"].close()

    slow = threading.Thread(target=write_and_hold)
    slow.start()
    assert holding.wait(10)
    add_entries(1, target="SK-FAST")  # a newer number, committed first
    anchoring = threading.Thread(target=anchor)
    anchoring.start()
    try:
        assert not anchored.wait(1)  # waiting for the open writer
    finally:
        release.set()
        slow.join(10)
        anchoring.join(10)
    assert (result["entries"], result["chains"]) == (2, 2)
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps(result))
    assert verify(path)[0] == 0


@pytest.mark.django_db(transaction=True)
def test_given_a_writer_that_stays_open_then_anchor_gives_up_with_exit_3(monkeypatch):
    from shopkeeper.audit import verification

    monkeypatch.setattr(verification, "ANCHOR_LOCK_TIMEOUT_MS", 300)
    holding, release = threading.Event(), threading.Event()

    def write_and_hold() -> None:
        try:
            with transaction.atomic():
                record(action="order.note", target_type="order", target_id="SK-SLOW")
                holding.set()
                release.wait(10)
        finally:
            connections["default"].close()

    slow = threading.Thread(target=write_and_hold)
    slow.start()
    try:
        assert holding.wait(10)
        code, output = audit("anchor")
    finally:
        release.set()
        slow.join(10)
    assert code == 3
    assert "no anchor written: a transaction writing to the audit log stayed open" in output
