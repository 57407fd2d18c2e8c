"""The audit log: append-only on PostgreSQL, and `shopkeeper audit verify` finds any tampering."""

from __future__ import annotations

import io
from contextlib import contextmanager

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from shopkeeper.audit.models import AuditEntry
from shopkeeper.audit.services import record

pytestmark = pytest.mark.django_db


def add_entries(count: int) -> list[AuditEntry]:
    return [
        record(
            action="order.note",
            target_type="order",
            target_id=f"SK-{n}",
            actor_label="tester",
            before={"n": n},
            after={"n": n + 1, "nested": {"b": 1, "a": [1, 2]}},
            details={"text": "ünïcode ✓"},
        )
        for n in range(count)
    ]


def verify() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("audit", "verify", stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue() + str(error)
    return 0, out.getvalue()


@contextmanager
def tampering_allowed():
    """On PostgreSQL the append-only trigger must be switched off to tamper at all."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE audit_auditentry DISABLE TRIGGER ALL")
        try:
            yield
        finally:
            with connection.cursor() as cursor:
                cursor.execute("ALTER TABLE audit_auditentry ENABLE TRIGGER ALL")
    else:
        yield


def test_given_untouched_log_when_verified_then_ok_with_the_count():
    add_entries(4)
    assert verify() == (0, "OK 4 entries\n")


def test_given_empty_log_when_verified_then_ok_zero():
    assert verify() == (0, "OK 0 entries\n")


def test_given_an_edited_entry_when_verified_then_it_is_reported_and_exit_is_nonzero():
    entries = add_entries(4)
    with tampering_allowed():
        AuditEntry.objects.filter(pk=entries[1].pk).update(after={"n": 999})

    code, output = verify()

    assert code == 1
    assert f"BROKEN #{entries[1].seq}: content does not match its hash" in output
    assert f"#{entries[0].seq}:" not in output


def test_given_an_edited_entry_with_a_recomputed_hash_then_the_next_link_breaks():
    entries = add_entries(3)
    from shopkeeper.audit.chain import entry_hash
    from shopkeeper.audit.services import _stored_form

    victim = AuditEntry.objects.filter(pk=entries[1].pk).values().get()
    victim["action"] = "order.nothing_happened"
    forged = entry_hash(victim["prev_hash"], _stored_form(victim))
    with tampering_allowed():
        AuditEntry.objects.filter(pk=entries[1].pk).update(
            action="order.nothing_happened", hash=forged
        )

    code, output = verify()

    assert code == 1
    assert f"BROKEN #{entries[2].seq}: previous-hash link broken" in output


def test_given_a_deleted_middle_entry_when_verified_then_the_gap_is_reported():
    entries = add_entries(4)
    with tampering_allowed():
        AuditEntry.objects.filter(pk=entries[1].pk).delete()

    code, output = verify()

    assert code == 1
    assert f"BROKEN #{entries[2].seq}: entries missing before #{entries[2].seq}" in output


def test_given_the_newest_entry_deleted_when_verified_then_the_head_mismatch_is_reported():
    entries = add_entries(3)
    with tampering_allowed():
        AuditEntry.objects.filter(pk=entries[2].pk).delete()

    code, output = verify()

    assert code == 1
    assert f"the log ends at #{entries[1].seq} but #{entries[2].seq} was the last" in output


@pytest.mark.postgres
def test_given_postgres_when_an_entry_is_updated_then_the_trigger_refuses():
    (entry,) = add_entries(1)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="order.forged")
    assert AuditEntry.objects.get(pk=entry.pk).action == "order.note"


@pytest.mark.postgres
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
    from tests.integration.orders_admin_fixtures import Api, make_staff, place, token_for

    order = place(fake_gateway, settings)
    staff = make_staff("support", "sam@shop.example")
    response = Api(token_for(staff)).post(
        f"/orders/{order.number}/cancel",
        {"reason": "customer asked"},
        HTTP_USER_AGENT="Shopkeeper-Tests/1.0",
        HTTP_X_REQUEST_ID="req-cancel-42",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-cancel-42"
    staff.email = "renamed@shop.example"  # the entry keeps the address it was made with
    staff.save()

    entry = AuditEntry.objects.get(action="order.cancelled")

    assert (entry.actor_id, entry.actor_email) == (staff.pk, "sam@shop.example")
    assert (entry.target_type, entry.target_id, entry.target_label) == (
        "order",
        order.number,
        order.number,
    )
    assert entry.before == {"status": "pending", "payment_status": "pending"}
    assert entry.after == {"status": "cancelled", "payment_status": "voided"}
    assert (entry.ip, entry.user_agent, entry.request_id) == (
        "203.0.113.9",
        "Shopkeeper-Tests/1.0",
        "req-cancel-42",
    )
    code, output = verify()
    assert code == 0 and output.startswith("OK ")
