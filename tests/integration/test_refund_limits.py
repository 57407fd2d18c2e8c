"""Refund limits cannot be split: per order (every unapproved refund counts) and per staff per day.

The per-refund limit (`SHOPKEEPER_REFUND_LIMITS`) caps what refunds nobody approved may add up
to on one order; the daily limit (`SHOPKEEPER_REFUND_DAILY_LIMITS`) caps what one member of staff
refunds without approval over any 24 hours. Refunds awaiting approval, approved by a manager,
rejected or failed count toward neither; refunds pending at Stripe do.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from shopkeeper.audit.models import AuditEntry
from shopkeeper.errors import PaymentDeclined
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.services import approve_refund, reject_refund, request_refund
from tests.factories import paid_order, staff, token_for
from tests.integration.refund_fixtures import Api

pytestmark = pytest.mark.django_db

AWAITING = "awaiting_approval"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "100.00"}}
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"USD": "1000.00"}}


def big_order(gateway):
    """6 lamps at 100.00 + 5.00 shipping: 605.00 USD paid."""
    return paid_order(gateway, items={"LAMP": 6}, price="100.00")


def refund(order, actor, amount: str) -> Refund:
    return request_refund(order_number=order.number, actor=actor, amount=amount, reason="other")


def test_given_support_limit_100_when_six_100_refunds_on_a_605_order_then_only_one_goes_alone(
    fake_gateway,
):
    order = big_order(fake_gateway)
    support = staff("support")

    statuses = [refund(order, support, "100.00").status for _ in range(6)]

    assert statuses == ["succeeded"] + [AWAITING] * 5
    assert len(fake_gateway.refunds) == 1
    requested = AuditEntry.objects.filter(action="order.refund.requested").order_by("seq")
    assert [entry.details["approval_because"] for entry in requested] == [[]] + [
        ["order_limit"]
    ] * 5


def test_given_small_refunds_on_one_order_when_they_add_up_past_the_limit_then_approval(
    fake_gateway,
):
    order = big_order(fake_gateway)
    support = staff("support")

    statuses = [refund(order, support, amount).status for amount in ("60.00", "40.00", "0.01")]

    assert statuses == ["succeeded", "succeeded", AWAITING]


def test_given_a_colleagues_unapproved_refund_on_the_order_then_it_counts_too(fake_gateway):
    order = big_order(fake_gateway)
    refund(order, staff("support", "ann@shop.example"), "70.00")

    assert refund(order, staff("support", "bob@shop.example"), "40.00").status == AWAITING


def test_given_earlier_refund_approved_by_a_manager_then_it_no_longer_counts(fake_gateway):
    order = big_order(fake_gateway)
    support = staff("support")
    waiting = refund(order, support, "150.00")
    assert waiting.status == AWAITING
    assert refund(order, support, "1.00").status == "succeeded"  # awaiting counts for nothing

    approve_refund(refund_id=waiting.pk, actor=staff("manager"))

    assert Refund.objects.get(pk=waiting.pk).status == "succeeded"
    assert refund(order, support, "99.00").status == "succeeded"
    assert refund(order, support, "0.01").status == AWAITING


def test_given_rejected_and_failed_refunds_then_they_count_for_nothing(fake_gateway):
    order = big_order(fake_gateway)
    support = staff("support")
    reject_refund(refund_id=refund(order, support, "500.00").pk, actor=staff("manager"))
    fake_gateway.fail_next["create_refund"] = [PaymentDeclined("The card issuer said no")]
    assert refund(order, support, "100.00").status == "failed"

    assert refund(order, support, "100.00").status == "succeeded"


def test_given_a_refund_pending_at_stripe_then_it_counts(fake_gateway):
    fake_gateway.refund_status = "pending"
    order = big_order(fake_gateway)
    support = staff("support")
    assert refund(order, support, "100.00").status == "pending"

    assert refund(order, support, "0.01").status == AWAITING


def test_given_manager_without_limit_then_never_awaits_whatever_the_order_has_had(fake_gateway):
    order = big_order(fake_gateway)
    manager = staff("manager")

    statuses = {refund(order, manager, "100.00").status for _ in range(6)}

    assert statuses == {"succeeded"}


# --- the rolling 24 hours per member of staff ------------------------------------------------


def test_given_daily_limit_when_refunds_spread_over_orders_then_the_day_sum_sends_to_approval(
    fake_gateway, settings
):
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"USD": "250.00"}}
    support = staff("support")
    orders = [big_order(fake_gateway) for _ in range(4)]

    statuses = [refund(order, support, "100.00").status for order in orders]

    assert statuses == ["succeeded", "succeeded", AWAITING, AWAITING]
    # Another member of staff has a day of their own.
    assert refund(orders[3], staff("support", "bob@shop.example"), "50.00").status == "succeeded"


def test_given_day_old_refunds_then_they_leave_the_rolling_window(fake_gateway, settings):
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"USD": "100.00"}}
    support = staff("support")
    first, second = big_order(fake_gateway), big_order(fake_gateway)
    earlier = refund(first, support, "100.00")
    assert refund(second, support, "1.00").status == AWAITING

    Refund.objects.filter(pk=earlier.pk).update(
        created_at=timezone.now() - timedelta(hours=24, minutes=1)
    )

    assert refund(second, support, "100.00").status == "succeeded"


def test_given_daily_limits_of_another_currency_then_they_are_separate(fake_gateway, settings):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"USD": "100.00", "EUR": "100.00"}}
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"USD": "100.00", "EUR": "100.00"}}
    support = staff("support")
    refund(big_order(fake_gateway), support, "100.00")

    euros = paid_order(fake_gateway, items={"CUP": 20}, currency="EUR")

    assert refund(euros, support, "100.00").status == "succeeded"


def test_given_currency_missing_from_the_daily_table_then_every_refund_in_it_awaits(
    fake_gateway, settings
):
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"EUR": "500.00"}}

    assert refund(big_order(fake_gateway), staff("support"), "0.01").status == AWAITING


def test_given_default_settings_then_support_has_a_daily_limit_in_usd():
    from django.conf import settings as django_settings

    from shopkeeper.settings import SHOPKEEPER_REFUND_DAILY_LIMITS

    assert SHOPKEEPER_REFUND_DAILY_LIMITS["support"]["USD"] == "500.00"
    assert django_settings.SHOPKEEPER_REFUND_DAILY_LIMITS is not None


# --- the preview the dialog asks for ---------------------------------------------------------


def preview(api: Api, order, body: dict) -> dict:
    response = api.post(f"/api/admin/orders/{order.number}/refunds/preview", body)
    assert response.status_code == 200, response.content
    return response.json()


def test_given_support_when_previewing_then_the_answer_says_whether_approval_is_needed(
    fake_gateway, settings
):
    order = big_order(fake_gateway)
    support = staff("support")
    api = Api(token_for(support))
    refund(order, support, "60.00")

    within = preview(api, order, {"amount": "40.00"})
    above = preview(api, order, {"amount": "40.01"})

    assert within["needs_approval"] is False and within["amount"] == "40.00"
    assert above["needs_approval"] is True and above["reasons"] == ["order_limit"]
    assert above["message"] == (
        "This refund will need a manager's approval: "
        "it is more than the 40.00 USD you may still refund on this order alone."
    )
    settings.SHOPKEEPER_REFUND_DAILY_LIMITS = {"support": {"USD": "80.00"}}
    both = preview(api, order, {"amount": "40.01"})
    assert both["reasons"] == ["order_limit", "daily_limit"]
    assert both["message"].endswith(
        "the 40.00 USD you may still refund on this order alone and "
        "the 20.00 USD you may still refund alone within 24 hours."
    )
    assert Refund.objects.filter(order=order).count() == 1  # a preview refunds nothing


def test_given_lines_when_previewing_then_the_amount_follows_from_them(fake_gateway):
    order = big_order(fake_gateway)
    line = order.lines.get()
    api = Api(token_for(staff("support")))

    answer = preview(api, order, {"lines": [{"line_id": line.pk, "quantity": 2}]})

    assert answer["amount"] == "200.00" and answer["needs_approval"] is True


def test_given_currency_without_limit_when_previewing_then_it_says_what_happens(
    fake_gateway, settings
):
    settings.SHOPKEEPER_REFUND_LIMITS = {"support": {"EUR": "100.00"}}
    order = big_order(fake_gateway)

    answer = preview(Api(token_for(staff("support"))), order, {"amount": "0.01"})

    assert answer["needs_approval"] is True and answer["reasons"] == ["no_limit_set"]
    assert "No refund limit is set for USD" in answer["message"]


def test_given_viewer_when_previewing_then_403(fake_gateway):
    order = big_order(fake_gateway)
    response = Api(token_for(staff("viewer"))).post(
        f"/api/admin/orders/{order.number}/refunds/preview", {"amount": "1.00"}
    )
    assert response.status_code == 403


def test_given_amount_above_refundable_when_previewing_then_409_problem(fake_gateway):
    order = big_order(fake_gateway)
    response = Api(token_for(staff("support"))).post(
        f"/api/admin/orders/{order.number}/refunds/preview", {"amount": "605.01"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "refund_exceeds_refundable"
