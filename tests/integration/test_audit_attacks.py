"""A database superuser without SHOPKEEPER_AUDIT_KEY cannot rewrite the audit log unseen.

Each attack here passed `audit verify` before the chains were keyed (one unkeyed SHA-256 chain
and one head row anyone could recompute); `tests/audit_fixtures.py` is the attacker.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shopkeeper.audit.models import AuditChainHead, AuditEntry
from tests.audit_fixtures import (
    add_entries,
    as_superuser,
    delete_everything,
    delete_newest_and_set_head_back,
    head_of,
    rehash_without_the_key,
    verify,
    write_anchor,
)

pytestmark = pytest.mark.django_db  # on PostgreSQL, with the trigger switched off as a superuser


def test_given_the_newest_entry_deleted_and_the_head_set_back_then_verify_fails():
    add_entries(3, target="SK-ONE")

    delete_newest_and_set_head_back("order:SK-ONE")

    code, output = verify()
    assert code == 1
    assert "order:SK-ONE: head seal invalid (entries removed, head reset)" in output


def test_given_everything_deleted_while_orders_exist_then_verify_fails(fake_gateway, settings):
    from tests.factories import new_order

    order = new_order(fake_gateway, price="10.50")

    delete_everything()

    code, output = verify()
    assert code == 1
    assert f"order:{order.number}: the order exists but its audit trail is gone" in output


def test_given_an_entry_edited_and_the_rest_rehashed_without_the_key_then_verify_fails():
    entries = add_entries(3, target="SK-ONE")
    with as_superuser():
        AuditEntry.objects.filter(pk=entries[0].pk).update(action="order.nothing_happened")

    rehash_without_the_key("order:SK-ONE")

    code, output = verify()
    assert code == 1
    for entry in entries:
        assert f"#{entry.seq}: order:SK-ONE: content does not match its keyed hash" in output
    assert "order:SK-ONE: head seal invalid" in output


def test_given_an_older_anchor_when_newest_entries_go_and_heads_come_back_from_a_backup_then_the_anchor_catches_it(  # noqa: E501
    tmp_path: Path,
):
    add_entries(2, target="SK-ONE")
    backup = head_of("order:SK-ONE")  # the head row as a backup of this moment holds it
    add_entries(1, target="SK-ONE")
    add_entries(2)  # a chain of its own each: order:SK-0, order:SK-1
    anchor = tmp_path / "anchor.json"
    write_anchor(anchor)
    add_entries(1, target="SK-LATER")

    delete_newest_and_set_head_back("order:SK-ONE", head=backup)
    with as_superuser():  # and a whole chain that no order row names
        AuditEntry.objects.filter(chain="order:SK-1").delete()
        AuditChainHead.objects.filter(chain="order:SK-1").delete()

    assert verify()[0] == 0  # what no keyed chain alone can see: the anchor is needed
    code, output = verify(anchor)
    assert code == 1
    assert "BROKEN log: the log holds 3 entries in 2 chains up to #" in output
    assert "signed 5 entries in 3 chains (entries removed)" in output


def test_given_a_tampered_anchor_then_verify_refuses_it_and_says_why(tmp_path: Path):
    add_entries(3)
    anchor = tmp_path / "anchor.json"
    body = write_anchor(anchor)
    anchor.write_text(json.dumps({**body, "entries": 1, "chains": 1}))

    code, output = verify(anchor)

    assert code == 2
    assert "signature invalid: altered, or signed with another key" in output


def test_given_a_log_shortened_below_the_anchor_then_verify_fails(tmp_path: Path):
    add_entries(4)
    anchor = tmp_path / "anchor.json"
    body = write_anchor(anchor)

    delete_everything()  # no orders exist: without the anchor an empty log looks sound

    assert verify() == (0, "OK 0 entries\n")
    code, output = verify(anchor)
    assert code == 1
    assert (
        f"the log holds 0 entries in 0 chains up to #{body['seq']}; the anchor of "
        f"{body['created_at']} signed 4 entries in 4 chains (entries removed)"
    ) in output
