"""The audit log: append-only on PostgreSQL, and `shopkeeper audit verify` finds any tampering."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from shopkeeper.audit.models import AuditChainHead, AuditEntry
from tests.audit_fixtures import add_entries, as_superuser, verify

pytestmark = pytest.mark.django_db


def test_given_untouched_log_when_verified_then_ok_with_the_count():
    add_entries(4)
    add_entries(3, target="SK-ONE")
    assert verify() == (0, "OK 7 entries\n")


def test_given_empty_log_when_verified_then_ok_zero():
    assert verify() == (0, "OK 0 entries\n")


def test_given_entries_about_one_object_then_they_form_its_own_chain():
    entries = add_entries(3, target="SK-ONE")
    other = add_entries(1)[0]

    assert [(e.chain, e.chain_seq) for e in entries] == [("order:SK-ONE", n) for n in (1, 2, 3)]
    assert entries[1].prev_hash == entries[0].hash
    assert (other.chain, other.chain_seq, other.prev_hash) == ("order:SK-0", 1, "0" * 64)
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    head = AuditChainHead.objects.get(chain="order:SK-ONE")
    assert (head.chain_seq, head.hash) == (3, entries[2].hash)


def test_given_an_edited_entry_when_verified_then_it_is_reported_and_exit_is_nonzero():
    entries = add_entries(4, target="SK-ONE")
    with as_superuser():
        AuditEntry.objects.filter(pk=entries[1].pk).update(after={"n": 999})

    code, output = verify()

    assert code == 1
    assert (
        f"BROKEN #{entries[1].seq}: order:SK-ONE: content does not match its keyed hash" in output
    )
    assert f"#{entries[0].seq}:" not in output


def test_given_a_deleted_middle_entry_when_verified_then_the_gap_is_reported():
    entries = add_entries(4, target="SK-ONE")
    with as_superuser():
        AuditEntry.objects.filter(pk=entries[1].pk).delete()

    code, output = verify()

    assert code == 1
    assert f"BROKEN #{entries[2].seq}: order:SK-ONE: entries missing before #3" in output


def test_given_the_newest_entry_deleted_when_verified_then_the_head_mismatch_is_reported():
    entries = add_entries(3, target="SK-ONE")
    with as_superuser():
        AuditEntry.objects.filter(pk=entries[2].pk).delete()

    code, output = verify()

    assert code == 1
    assert "order:SK-ONE: its newest entries were removed" in output


def test_given_an_entry_moved_to_another_chain_then_it_is_reported():
    entries = add_entries(2, target="SK-ONE")
    with as_superuser():
        AuditEntry.objects.filter(pk=entries[1].pk).update(chain="order:SK-TWO", chain_seq=1)

    code, output = verify()

    assert code == 1
    assert "order:SK-TWO: content does not match its keyed hash" in output
    assert "order:SK-ONE: its newest entries were removed" in output


def test_given_postgres_when_an_entry_is_updated_then_the_trigger_refuses():
    (entry,) = add_entries(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="order.forged")
    assert AuditEntry.objects.get(pk=entry.pk).action == "order.note"


def test_given_postgres_when_an_entry_is_deleted_then_the_trigger_refuses():
    (entry,) = add_entries(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("DELETE FROM audit_auditentry")
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    assert verify() == (0, "OK 1 entries\n")


def test_given_a_cancel_through_the_api_then_its_entry_carries_who_where_and_the_chain_holds(
    fake_gateway, settings
):
    from tests.factories import new_order, staff, token_for
    from tests.integration.orders_admin_fixtures import Api

    order = new_order(fake_gateway, price="10.50")
    support = staff("support", "sam@shop.example")
    response = Api(token_for(support)).post(
        f"/orders/{order.number}/cancel",
        {"reason": "customer asked"},
        HTTP_USER_AGENT="Shopkeeper-Tests/1.0",
        HTTP_X_REQUEST_ID="req-cancel-42",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-cancel-42"
    support.email = "renamed@shop.example"  # the entry keeps the address it was made with
    support.save()

    entry = AuditEntry.objects.get(action="order.cancelled")

    assert (entry.actor_id, entry.actor_email) == (support.pk, "sam@shop.example")
    assert (entry.target_type, entry.target_id, entry.target_label) == (
        "order",
        order.number,
        order.number,
    )
    trail = AuditEntry.objects.filter(chain=f"order:{order.number}").order_by("chain_seq")
    assert (trail.first().action, trail.last()) == ("order.placed", entry)  # type: ignore[union-attr]
    assert entry.before == {"status": "pending", "payment_status": "pending"}
    assert entry.after == {"status": "cancelled", "payment_status": "voided"}
    assert (entry.ip, entry.user_agent, entry.request_id) == (
        "203.0.113.9",
        "Shopkeeper-Tests/1.0",
        "req-cancel-42",
    )
    code, output = verify()
    assert code == 0 and output.startswith("OK ")
