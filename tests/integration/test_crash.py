"""A crash between Stripe's refund and our commit: nothing is lost, nothing is refunded twice.

The failpoint `refund.after_stripe` (shopkeeper/failpoints.py) sits after Stripe answered the
refund and before we record the answer. In a real `shopkeeper serve` process it SIGKILLs the
worker there: the refund exists at Stripe (localstripe), our database has only the reservation.
After a restart, reconciliation finds the refund at Stripe by the key we sent with it and
records it: exactly one refund, a ledger equal to Stripe's, and the audit log says so.

The server shares pytest-django's PostgreSQL test database. The same kill while the request
holds an Idempotency-Key leaves the key's claim in progress; after its lease the same key takes
it over and answers with the refund the dead request reserved.
"""

from __future__ import annotations

import http.client
import json
import time
from datetime import timedelta
from typing import Any

import pytest

from shopkeeper.audit.models import AuditEntry
from shopkeeper.failpoints import FailpointTriggered
from shopkeeper.idempotency.models import IdempotencyRecord
from shopkeeper.orders.models import Order
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff, token_for
from tests.integration.server_process import ServerProcess, run_shopkeeper, shopkeeper_env
from tests.secret_watch import SECRET_KEY_SHAPE

pytestmark = pytest.mark.localstripe
KILLED = "Failpoint refund.after_stripe: killing process"


def call(
    base: str, method: str, path: str, token: str, body: Any = None, *, key: str = ""
) -> tuple[int, Any]:
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    try:
        connection.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def refunds_at_stripe(localstripe_gateway, order: Order) -> list:
    return localstripe_gateway.list_refunds(order.payments.get().intent_id)


def ledger_refunds(order: Order) -> dict[str, int]:
    entries = LedgerEntry.objects.filter(order=order, kind="refund")
    return dict(entries.values_list("external_id", "amount_minor"))


def wait_for(predicate, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.django_db
def test_given_failpoint_raising_after_stripe_refunded_then_pending_until_reconciled(
    settings, localstripe_gateway
):
    """In one process: the same gap, with an exception in place of the kill."""
    order = paid_order(localstripe_gateway)
    settings.SHOPKEEPER_FAILPOINTS = {"refund.after_stripe": "raise"}
    with pytest.raises(FailpointTriggered):
        request_refund(
            order_number=order.number, actor=staff("manager"), amount="4.00", reason="other"
        )
    settings.SHOPKEEPER_FAILPOINTS = {}
    (made,) = refunds_at_stripe(localstripe_gateway, order)
    refund = Refund.objects.get(order=order)
    assert (refund.status, refund.stripe_refund_id, ledger_refunds(order)) == ("pending", None, {})

    report = reconcile(order_number=order.number, fix=True, in_flight=timedelta(0))

    assert report.exit_code == 0, report.as_text()
    refund.refresh_from_db()
    assert (refund.status, refund.stripe_refund_id) == ("succeeded", made.id)
    assert refunds_at_stripe(localstripe_gateway, order) == [made]
    assert ledger_refunds(order) == {made.id: 400}


@pytest.mark.django_db(transaction=True)
def test_given_server_killed_after_stripe_refunded_when_restarted_and_reconciled_then_one_refund(
    tmp_path, localstripe_url, localstripe_gateway
):
    order = paid_order(localstripe_gateway)  # 25.00 USD, paid at localstripe, committed
    token = token_for(staff("owner"))
    env = shopkeeper_env(
        tmp_path,
        STRIPE_API_BASE=localstripe_url,
        SHOPKEEPER_REFUND_RETRY_DELAYS="0.05",
        SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS="0",
    )
    refunds_path = f"/api/admin/orders/{order.number}/refunds"
    order_path = f"/api/admin/orders/{order.number}"

    # When: the worker is killed after Stripe made the refund, before our commit.
    crashing = {**env, "SHOPKEEPER_FAILPOINTS": "refund.after_stripe=kill"}
    with ServerProcess(crashing, tmp_path / "server.log") as server:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            call(server.url, "POST", refunds_path, token, {"amount": "7.00", "reason": "other"})
        assert wait_for(lambda: KILLED in server.output()), server.output()

    # Then: Stripe has the refund; we have only the reservation, pending, nothing in the ledger.
    (made,) = refunds_at_stripe(localstripe_gateway, order)
    assert made.amount == 700
    refund = Refund.objects.get(order=order)
    assert (refund.status, refund.stripe_refund_id) == ("pending", None)
    assert ledger_refunds(order) == {}
    assert Order.objects.get(pk=order.pk).payment_status == "paid"

    # After a restart (no failpoint) and reconciliation:
    with ServerProcess(env, tmp_path / "server.log") as server:
        status, before = call(server.url, "GET", order_path, token)
        assert status == 200 and [r["status"] for r in before["refunds"]] == ["pending"]

        reconciled = run_shopkeeper("reconcile", "--fix", "--order", order.number, env=env)
        assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
        assert "1 fixed, 0 remaining" in reconciled.stdout, reconciled.stdout

        status, after = call(server.url, "GET", order_path, token)
    assert [r["status"] for r in after["refunds"]] == ["succeeded"]
    assert (after["payment_status"], after["refunded_minor"]) == ("partially_refunded", 700)

    # Exactly one refund at Stripe, the ledger equals it, and the audit log tells the story.
    assert refunds_at_stripe(localstripe_gateway, order) == [made]
    assert ledger_refunds(order) == {made.id: 700}
    actions = list(
        AuditEntry.objects.filter(action__startswith="order.refund.").values_list(
            "action", flat=True
        )
    )
    assert actions == ["order.refund.requested", "order.refund.succeeded"]
    settled = AuditEntry.objects.get(action="order.refund.succeeded")
    assert settled.details["stripe_refund_id"] == made.id
    assert settled.details["source"] == "reconciliation"
    verified = run_shopkeeper("audit", "verify", env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    logged = (tmp_path / "server.log").read_text(errors="replace") + reconciled.stdout
    assert not SECRET_KEY_SHAPE.search(logged)  # the servers' and reconcile's output too


@pytest.mark.django_db(transaction=True)
def test_given_server_killed_holding_a_key_when_retried_after_its_lease_then_it_answers_its_refund(
    tmp_path, localstripe_url, localstripe_gateway
):
    order = paid_order(localstripe_gateway)
    token = token_for(staff("owner"))
    lease = 6.0  # longer than the longest request with these settings (2 x (1 + 1) + 0.05 s)
    env = shopkeeper_env(
        tmp_path,
        STRIPE_API_BASE=localstripe_url,
        STRIPE_TIMEOUT="1",
        STRIPE_RATE_LIMIT_MAX_WAIT="1",
        SHOPKEEPER_REFUND_RETRY_DELAYS="0.05",
        SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS=str(lease),
        SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS="0.5",
        SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS="0",
    )
    path = f"/api/admin/orders/{order.number}/refunds"
    body = {"amount": "7.00", "reason": "other"}

    crashing = {**env, "SHOPKEEPER_FAILPOINTS": "refund.after_stripe=kill"}
    with ServerProcess(crashing, tmp_path / "server.log") as server:
        # When: the worker is killed holding the key, after Stripe made the refund.
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            call(server.url, "POST", path, token, body, key="dialog-9")
        assert wait_for(lambda: KILLED in server.output()), server.output()
        lease_over = time.monotonic() + lease + 0.5  # the lease began before the kill
        assert IdempotencyRecord.objects.get(key="dialog-9").state == "in_progress"

        # Within the lease the key is still held; after it, the key is taken over. The
        # restarted worker still has the failpoint: a second send would kill it again.
        held, during = call(server.url, "POST", path, token, body, key="dialog-9")
        time.sleep(max(0.0, lease_over - time.monotonic()))
        status, after = call(server.url, "POST", path, token, body, key="dialog-9")

    refund = Refund.objects.get(order=order)
    assert (held, during["code"]) == (409, "idempotency_key_in_progress")
    assert status == 201, after
    assert (after["refund"]["id"], after["refund"]["status"]) == (refund.pk, "pending")
    assert after["order"]["refunded_minor"] == 0  # Stripe's answer is not known here yet
    (made,) = refunds_at_stripe(localstripe_gateway, order)  # never a second refund

    # Once reconciliation settles the refund, the key replays the settled state.
    reconciled = run_shopkeeper("reconcile", "--fix", "--order", order.number, env=env)
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    with ServerProcess(env, tmp_path / "server.log") as server:
        status, settled = call(server.url, "POST", path, token, body, key="dialog-9")
    assert status == 201 and settled["refund"]["id"] == refund.pk
    assert settled["refund"]["status"] == "succeeded"
    assert settled["order"]["refunded_minor"] == 700
    assert refunds_at_stripe(localstripe_gateway, order) == [made]
    assert Refund.objects.filter(order=order).count() == 1
    assert ledger_refunds(order) == {made.id: 700}
