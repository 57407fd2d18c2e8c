"""Idempotency-Key on the refund endpoints: a retried request is answered, not carried out again."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from shopkeeper.failpoints import FailpointTriggered
from shopkeeper.idempotency.models import IdempotencyRecord
from shopkeeper.idempotency.services import current_claim, fingerprint, purge_records
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import request_refund
from tests.factories import paid_order, staff, token_for
from tests.integration.refund_fixtures import Api, refund_count, refunded_minor

pytestmark = pytest.mark.django_db

BODY = {"amount": "5.00", "reason": "requested_by_customer"}


@pytest.fixture(autouse=True)
def fast(settings):
    settings.SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS = 0.3


@pytest.fixture
def api():
    return Api(token_for(staff("manager")))


def refunds_sent(gateway) -> int:
    return len({key for op, key in gateway.calls if op == "create_refund"})


def test_given_same_key_and_body_when_posted_twice_then_first_response_replayed_one_refund(
    fake_gateway, api
):
    order = paid_order(fake_gateway)

    first = api.refund(order.number, BODY, key="dialog-1")
    second = api.refund(order.number, BODY, key="dialog-1")

    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true" and not first.has_header("Idempotent-Replayed")
    assert refund_count(order) == 1 and refunds_sent(fake_gateway) == 1
    assert refunded_minor(order) == 500


def test_given_same_key_and_same_json_in_another_key_order_then_replayed(fake_gateway, api):
    order = paid_order(fake_gateway)
    api.refund(order.number, {"amount": "5.00", "reason": "other"}, key="k")

    again = api.refund(order.number, {"reason": "other", "amount": "5.00"}, key="k")

    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert refund_count(order) == 1


def test_given_same_key_with_other_body_when_posted_then_422_reused_and_nothing_changes(
    fake_gateway, api
):
    order = paid_order(fake_gateway)
    api.refund(order.number, BODY, key="dialog-1")

    other = api.refund(order.number, {**BODY, "amount": "6.00"}, key="dialog-1")

    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert refund_count(order) == 1 and refunded_minor(order) == 500


def test_given_key_used_on_another_order_when_posted_then_422_reused(fake_gateway, api):
    first, second = paid_order(fake_gateway), paid_order(fake_gateway)
    api.refund(first.number, BODY, key="dialog-1")

    response = api.refund(second.number, BODY, key="dialog-1")

    assert response.status_code == 422 and response.json()["code"] == "idempotency_key_reused"
    assert refund_count(second) == 0


def test_given_two_users_with_one_key_then_each_key_is_their_own(fake_gateway, api):
    order = paid_order(fake_gateway)
    other = Api(token_for(staff("owner")))

    assert api.refund(order.number, BODY, key="same").status_code == 201
    response = other.refund(order.number, BODY, key="same")

    assert response.status_code == 201 and not response.has_header("Idempotent-Replayed")
    assert refund_count(order) == 2


def test_given_refused_request_when_retried_with_its_key_then_same_refusal_replayed(
    fake_gateway, api
):
    order = paid_order(fake_gateway)
    body = {"amount": "30.00", "reason": "other"}

    first = api.refund(order.number, body, key="too-much")
    second = api.refund(order.number, body, key="too-much")

    assert first.status_code == second.status_code == 409
    assert second.json()["code"] == "refund_exceeds_refundable"
    assert second["Content-Type"] == "application/problem+json"
    assert refund_count(order) == 0


def test_given_permission_denied_then_key_not_consumed(fake_gateway):
    order = paid_order(fake_gateway)
    viewer = Api(token_for(staff("viewer")))

    assert viewer.refund(order.number, BODY, key="k1").status_code == 403
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize("key", ["", "x" * 256, "with space", "ünïcode"])
def test_given_malformed_key_then_422_invalid_idempotency_key(fake_gateway, api, key):
    order = paid_order(fake_gateway)
    headers = {**api.headers, "HTTP_IDEMPOTENCY_KEY": key}
    response = api.client.post(
        f"/api/admin/orders/{order.number}/refunds",
        BODY,
        content_type="application/json",
        **headers,
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_idempotency_key"
    assert refund_count(order) == 0


def test_given_key_held_by_an_unfinished_request_then_409_in_progress(fake_gateway):
    order = paid_order(fake_gateway)
    user = staff("manager")
    path = f"/api/admin/orders/{order.number}/refunds"
    IdempotencyRecord.objects.create(
        owner_id=user.pk,
        key="busy",
        endpoint=f"POST {path}",
        fingerprint=fingerprint(method="POST", path=path, body=json.dumps(BODY).encode()),
    )

    response = Api(token_for(user)).refund(order.number, BODY, key="busy")

    assert response.status_code == 409 and response.json()["code"] == "idempotency_key_in_progress"
    assert refund_count(order) == 0


def test_given_crash_after_the_refund_row_then_key_answers_the_refund_and_never_refunds_twice(
    fake_gateway, api
):
    """A request that failed half-way must not run again: the key answers with its refund."""
    order = paid_order(fake_gateway)
    fake_gateway.fail_next["create_refund"] = [RuntimeError("bug after the reservation")]
    crashing = Client(raise_request_exception=False)

    first = crashing.post(
        f"/api/admin/orders/{order.number}/refunds",
        BODY,
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="crash",
        **api.headers,
    )
    second = api.refund(order.number, BODY, key="crash")

    assert first.status_code == 500
    assert second.status_code == 201 and second.json()["refund"]["status"] == "pending"
    assert refund_count(order) == 1 and refund_count(order, "pending") == 1
    assert refunds_sent(fake_gateway) == 1


def test_without_key_each_request_is_its_own_refund(fake_gateway, api):
    order = paid_order(fake_gateway)
    api.refund(order.number, BODY)
    api.refund(order.number, BODY)
    assert refund_count(order) == 2 and not IdempotencyRecord.objects.exists()


def test_approve_honours_the_key_too(fake_gateway, settings):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "1.00"}}
    order = paid_order(fake_gateway)
    support, manager = Api(token_for(staff("support"))), Api(token_for(staff("manager")))
    refund_id = support.refund(order.number, BODY).json()["refund"]["id"]

    first = manager.post(f"/api/admin/refunds/{refund_id}/approve", {}, key="approve-1")
    second = manager.post(f"/api/admin/refunds/{refund_id}/approve", {}, key="approve-1")

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json() and second["Idempotent-Replayed"] == "true"
    assert refunds_sent(fake_gateway) == 1


def test_purge_forgets_only_old_completed_keys(fake_gateway, api):
    from datetime import timedelta

    from django.utils import timezone

    order = paid_order(fake_gateway)
    api.refund(order.number, BODY, key="old")
    api.refund(order.number, {"amount": "1.00", "reason": "other"}, key="new")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(hours=25)
    )

    assert purge_records(older_than_hours=24) == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def claim_held_by_a_dead_request(user, order, key: str) -> IdempotencyRecord:
    """What a request killed while holding `key` leaves: its claim, in progress."""
    path = f"/api/admin/orders/{order.number}/refunds"
    return IdempotencyRecord.objects.create(
        owner_id=user.pk,
        key=key,
        endpoint=f"POST {path}",
        fingerprint=fingerprint(method="POST", path=path, body=json.dumps(BODY).encode()),
    )


def lapse(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_given_a_request_died_after_reserving_when_its_lease_ends_then_the_key_answers_its_refund(
    fake_gateway, settings
):
    user = staff("manager")
    order = paid_order(fake_gateway)
    record = claim_held_by_a_dead_request(user, order, "dead-1")
    # The dead request reserved its refund (linked to its claim) and sent it, then died before
    # recording Stripe's answer (the failpoint stands in for the kill).
    settings.SHOPKEEPER_FAILPOINTS = {"refund.after_stripe": "raise"}
    token = current_claim.set(record)
    try:
        with pytest.raises(FailpointTriggered):
            request_refund(
                order_number=order.number, actor=user, reason=BODY["reason"], amount=BODY["amount"]
            )
    finally:
        current_claim.reset(token)
        settings.SHOPKEEPER_FAILPOINTS = {}
    reserved = Refund.objects.get(order=order)
    api = Api(token_for(user))

    during = api.refund(order.number, BODY, key="dead-1")
    lapse(record)
    after = api.refund(order.number, BODY, key="dead-1")

    assert during.status_code == 409 and during.json()["code"] == "idempotency_key_in_progress"
    assert after.status_code == 201 and after["Idempotent-Replayed"] == "true"
    assert after.json()["refund"]["id"] == reserved.pk
    assert after.json()["refund"]["status"] == "pending"  # Stripe's answer still unknown
    assert refund_count(order) == 1 and refunds_sent(fake_gateway) == 1
    assert IdempotencyRecord.objects.get(pk=record.pk).state == "completed"


def test_given_a_request_died_before_reserving_when_the_lease_is_over_then_the_key_runs_once(
    fake_gateway,
):
    user = staff("manager")
    order = paid_order(fake_gateway)
    lapse(claim_held_by_a_dead_request(user, order, "dead-2"))
    api = Api(token_for(user))

    first = api.refund(order.number, BODY, key="dead-2")
    again = api.refund(order.number, BODY, key="dead-2")

    assert first.status_code == 201 and first.json()["refund"]["status"] == "succeeded"
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert refund_count(order) == 1 and refunds_sent(fake_gateway) == 1


def test_given_a_refund_settled_after_its_request_then_its_key_replays_the_settled_state(
    fake_gateway, api
):
    order = paid_order(fake_gateway)
    fake_gateway.lose_next_response.add("create_refund")
    first = api.refund(order.number, BODY, key="settles-later")
    assert first.status_code == 201 and first.json()["refund"]["status"] == "pending"

    report = reconcile(order_number=order.number, fix=True, in_flight=timedelta(0))
    again = api.refund(order.number, BODY, key="settles-later")

    assert report.exit_code == 0, report.as_text()
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json()["refund"]["id"] == first.json()["refund"]["id"]
    assert again.json()["refund"]["status"] == "succeeded"
    assert again.json()["order"]["payment_status"] == "partially_refunded"
    assert refund_count(order) == 1 and refunds_sent(fake_gateway) == 1
