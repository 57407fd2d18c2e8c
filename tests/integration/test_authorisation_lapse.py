"""Authorisations don't lapse: the warning from SHOPKEEPER_AUTH_WARN_AFTER on (API, list filter,
order page), and the hourly job's action at SHOPKEEPER_AUTH_EXPIRE_AFTER (void, capture,
notify), once, under SYSTEM, with Stripe failing or refusing."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.orders.authorisations import find_lapsing_authorisations
from shopkeeper.orders.models import Attention, Order
from shopkeeper.orders.services import cancel_order, capture_order
from shopkeeper.orders_view.authorisations import count_expiring_authorisations
from shopkeeper.payments.models import Payment
from shopkeeper.payments.services import apply_intent
from tests.factories import PASSWORD, authorised_order, new_order, paid_order, staff
from tests.integration.orders_admin_fixtures import api_as, intent_id
from tests.jobs import run_jobs

pytestmark = pytest.mark.django_db

WARN = timedelta(days=5)
EXPIRE = timedelta(days=6, hours=18)


def authorised_ago(order: Order, age: timedelta) -> Order:
    """Make `order`'s authorisation `age` old (as if the card had been authorised then)."""
    Payment.objects.filter(order=order).update(authorized_at=timezone.now() - age)
    return order


def run_lapse_job() -> list:
    """One hourly run: find the lapsed authorisations, then run the jobs it deferred."""
    find_lapsing_authorisations(timestamp=int(timezone.now().timestamp()))
    return run_jobs()


def stripe_moves(gateway) -> list[str]:
    return [
        op for op, _ in gateway.calls if op in ("cancel_payment_intent", "capture_payment_intent")
    ]


def audited(order: Order, action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(target_id=order.number, action=action))


# --- when the card was authorised ------------------------------------------------------------


def test_given_an_authorisation_when_recorded_then_its_time_is_kept(fake_gateway):
    before = timezone.now()
    order = authorised_order(fake_gateway)

    authorised_at = order.payments.get().authorized_at
    assert authorised_at is not None and before <= authorised_at <= timezone.now()


def test_given_stripe_reports_the_charge_time_when_the_news_is_late_then_that_time_is_kept(
    fake_gateway,
):
    order = new_order(fake_gateway, capture="manual")
    pi = intent_id(order)
    charged = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
    fake_gateway.pay(pi)
    late_news = fake_gateway.intents[pi]
    apply_intent(replace(late_news, charge_created=int(charged.timestamp())), source="stripe")

    assert order.payments.get().authorized_at == charged


# --- the warning, read at read time ----------------------------------------------------------


def test_given_an_authorisation_just_under_warn_after_then_its_deadline_but_no_warning(
    fake_gateway,
):
    order = authorised_ago(authorised_order(fake_gateway), WARN - timedelta(minutes=1))

    body = api_as("viewer").get(f"/orders/{order.number}").json()

    expires_at = datetime.fromisoformat(body["authorization_expires_at"])
    deadline = order.payments.get().authorized_at + EXPIRE
    assert abs(expires_at - deadline) < timedelta(milliseconds=1)  # the API shows milliseconds
    assert body["authorization_expiring"] is False
    assert body["authorization_warning"] is None


def test_given_an_authorisation_past_warn_after_then_the_detail_warns(fake_gateway):
    order = authorised_ago(authorised_order(fake_gateway), WARN)

    body = api_as("viewer").get(f"/orders/{order.number}").json()

    assert body["authorization_expiring"] is True
    assert body["authorization_warning"] == (
        "Authorisation lapses in 1 d 17 h: capture or cancel"  # 1 d 18 h less the request's time
    )


@pytest.mark.parametrize("state", ["paid", "captured", "cancelled"])
def test_given_an_order_without_an_open_authorisation_then_no_deadline(
    fake_gateway, manager, state
):
    if state == "paid":
        order = paid_order(fake_gateway)
    else:
        order = authorised_order(fake_gateway)
        if state == "captured":
            capture_order(order_number=order.number, actor=manager)
        else:
            cancel_order(order_number=order.number, reason="customer asked", actor=manager)
    authorised_ago(order, EXPIRE * 2)

    body = api_as("viewer").get(f"/orders/{order.number}").json()

    assert body["authorization_expires_at"] is None
    assert body["authorization_expiring"] is False


def orders_by_age(fake_gateway, manager) -> dict[str, str]:
    expiring = authorised_ago(authorised_order(fake_gateway, email="old@example.com"), WARN)
    expired = authorised_ago(authorised_order(fake_gateway, email="older@example.com"), EXPIRE)
    fresh = authorised_ago(authorised_order(fake_gateway, email="new@example.com"), timedelta(1))
    paid = authorised_ago(paid_order(fake_gateway, email="paid@example.com"), EXPIRE)
    cancelled = authorised_order(fake_gateway, email="gone@example.com")
    cancel_order(order_number=cancelled.number, reason="customer asked", actor=manager)
    authorised_ago(cancelled, EXPIRE)
    return {
        "expiring": expiring.number,
        "expired": expired.number,
        "fresh": fresh.number,
        "paid": paid.number,
        "cancelled": cancelled.number,
    }


def test_given_orders_of_every_age_when_filtering_expiring_then_only_expiring_ones(
    fake_gateway, manager
):
    numbers = orders_by_age(fake_gateway, manager)
    api = api_as("viewer")

    page = api.get("/orders", authorization_expiring="true").json()
    others = api.get("/orders", authorization_expiring="false").json()

    assert {o["number"] for o in page["items"]} == {numbers["expiring"], numbers["expired"]}
    assert all(o["authorization_expiring"] for o in page["items"])
    assert all(o["authorization_warning"] for o in page["items"])
    assert {o["number"] for o in others["items"]} == {
        numbers["fresh"],
        numbers["paid"],
        numbers["cancelled"],
    }
    fresh = next(o for o in others["items"] if o["number"] == numbers["fresh"])
    assert fresh["authorization_expires_at"] is not None and not fresh["authorization_expiring"]
    assert count_expiring_authorisations() == 2


def test_given_a_bad_filter_value_then_problem_json_and_no_500(fake_gateway):
    response = api_as("viewer").get("/orders", authorization_expiring="soon")

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"


def test_given_expiring_filter_then_the_list_reads_the_partial_index(fake_gateway, manager):
    orders_by_age(fake_gateway, manager)
    from shopkeeper.orders_view.authorisations import expiring_authorisations

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        sql, params = expiring_authorisations().values("order_id").query.sql_with_params()
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "payment_open_authorisation_idx" in plan


def test_given_an_expiring_order_when_listing_in_the_back_office_then_marked_and_filtered(
    fake_gateway, manager
):
    numbers = orders_by_age(fake_gateway, manager)
    client = Client()
    client.force_login(staff("viewer", password=PASSWORD))

    everything = client.get("/admin/orders").content.decode()
    filtered = client.get("/admin/orders", {"authorization_expiring": "true"}).content.decode()

    assert everything.count('data-testid="authorization-expiring"') == 2
    assert numbers["expiring"] in filtered and numbers["expired"] in filtered
    assert numbers["fresh"] not in filtered and numbers["paid"] not in filtered


def test_given_an_expiring_order_when_opening_its_page_then_the_warning_shows(fake_gateway):
    order = authorised_ago(authorised_order(fake_gateway), WARN)
    fresh = authorised_ago(authorised_order(fake_gateway), WARN - timedelta(hours=1))
    client = Client()
    client.force_login(staff("viewer", password=PASSWORD))

    page = client.get(f"/admin/orders/{order.number}").content.decode()
    fresh_page = client.get(f"/admin/orders/{fresh.number}").content.decode()

    assert 'data-testid="authorization-warning"' in page
    assert "Authorisation lapses in 1 d 17 h: capture or cancel" in page
    assert 'data-testid="authorization-warning"' not in fresh_page


def test_given_the_list_when_read_then_the_deadline_costs_no_statement(fake_gateway, manager):
    orders_by_age(fake_gateway, manager)
    api = api_as("viewer")
    api.get("/orders")  # warm the session and the token

    with CaptureQueriesContext(connection) as plain:
        api.get("/orders", status="processing")
    with CaptureQueriesContext(connection) as filtered:
        api.get("/orders", authorization_expiring="true")

    assert len(filtered) == len(plain)


# --- the hourly job --------------------------------------------------------------------------


def test_given_notify_when_an_authorisation_has_expired_then_flagged_once_nothing_at_stripe(
    fake_gateway, settings, caplog
):
    settings.SHOPKEEPER_AUTH_EXPIRY_ACTION = "notify"
    order = authorised_ago(authorised_order(fake_gateway), EXPIRE)

    with caplog.at_level(logging.WARNING, logger="shopkeeper.orders.authorisations"):
        runs = run_lapse_job()

    assert [run.outcome for run in runs] == ["succeeded"]
    (flag,) = Attention.objects.filter(order=order)
    assert (flag.code, flag.subject) == ("authorization_expiring", intent_id(order))
    (entry,) = audited(order, "order.attention_flagged")
    assert entry.actor_id is None and entry.actor_email == "Shopkeeper"
    assert entry.details["code"] == "authorization_expiring"
    assert stripe_moves(fake_gateway) == []
    assert any("past its deadline" in r.getMessage() for r in caplog.records)
    order.refresh_from_db()
    assert (order.payment_status, order.needs_attention) == ("authorized", True)

    assert run_lapse_job() == []  # flagged already: the next run has nothing to do
    assert Attention.objects.filter(order=order).count() == 1
    assert len(audited(order, "order.attention_flagged")) == 1


def test_given_void_when_an_authorisation_has_expired_then_cancelled_as_staff_would_once(
    fake_gateway, settings
):
    settings.SHOPKEEPER_AUTH_EXPIRY_ACTION = "void"
    order = authorised_ago(authorised_order(fake_gateway, stock=10), EXPIRE)
    assert Product.objects.get(sku="MUG").stock == 8

    run_lapse_job()

    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("cancelled", "voided")
    assert "Authorisation not captured within 6 d 18 h" in order.cancel_reason
    assert Product.objects.get(sku="MUG").stock == 10
    assert fake_gateway.intents[intent_id(order)].status == "canceled"
    (entry,) = audited(order, "order.cancelled")
    assert entry.actor_id is None and entry.actor_email == "Shopkeeper"
    assert entry.details["restocked"]

    assert run_lapse_job() == []
    assert stripe_moves(fake_gateway) == ["cancel_payment_intent"]
    assert len(audited(order, "order.cancelled")) == 1


def test_given_capture_when_an_authorisation_has_expired_then_captured_in_full_once(
    fake_gateway, settings
):
    settings.SHOPKEEPER_AUTH_EXPIRY_ACTION = "capture"
    order = authorised_ago(authorised_order(fake_gateway), EXPIRE)

    run_lapse_job()
    run_lapse_job()

    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("processing", "paid")
    (entry,) = audited(order, "order.captured")
    assert entry.actor_id is None and entry.actor_email == "Shopkeeper"
    assert entry.details["amount_minor"] == order.grand_total_minor
    assert stripe_moves(fake_gateway) == ["capture_payment_intent"]


@pytest.mark.parametrize("action", ["void", "capture", "notify"])
def test_given_orders_that_are_not_expired_open_authorisations_then_the_job_leaves_them(
    fake_gateway, settings, manager, action
):
    settings.SHOPKEEPER_AUTH_EXPIRY_ACTION = action
    numbers = orders_by_age(fake_gateway, manager)  # all but "expired" must stay as they are
    before = {
        n: Order.objects.filter(number=n).values_list("status", "payment_status")[0]
        for n in numbers.values()
    }
    calls = len(fake_gateway.calls)

    run_lapse_job()

    after = {
        n: Order.objects.filter(number=n).values_list("status", "payment_status")[0]
        for n in numbers.values()
    }
    changed = {n for n in numbers.values() if before[n] != after[n]}
    flagged = set(Attention.objects.values_list("order__number", flat=True))
    assert changed | flagged == {numbers["expired"]}
    assert len(fake_gateway.calls) - calls == (0 if action == "notify" else 1)


@pytest.mark.parametrize(
    ("action", "operation"),
    [("void", "cancel_payment_intent"), ("capture", "capture_payment_intent")],
)
def test_given_stripe_failing_when_the_job_acts_then_nothing_half_done_and_next_run_finishes(
    fake_gateway, settings, action, operation
):
    settings.SHOPKEEPER_AUTH_EXPIRY_ACTION = action
    order = authorised_ago(authorised_order(fake_gateway), EXPIRE)
    fake_gateway.fail_next[operation] = [PaymentOutcomeUnknown("read timed out")]

    runs = run_lapse_job()

    assert [run.outcome for run in runs] == ["succeeded"]  # retried by the next run, not failed
    order.refresh_from_db()
    assert (order.status, order.payment_status) == ("processing", "authorized")
    assert audited(order, "order.cancelled") == audited(order, "order.captured") == []
    assert not Attention.objects.filter(order=order).exists()

    run_lapse_job()

    order.refresh_from_db()
    assert order.payment_status == ("voided" if action == "void" else "paid")
    keys = [key for op, key in fake_gateway.calls if op == operation]
    assert len(keys) == 2 and len(set(keys)) == 1  # the retry reused the idempotency key


def test_given_stripe_let_it_lapse_when_capturing_then_refused_and_flagged(fake_gateway, settings):
    settings.SHOPKEEPER_AUTH_EXPIRY_ACTION = "capture"
    order = authorised_ago(authorised_order(fake_gateway), EXPIRE)
    pi = intent_id(order)
    fake_gateway.intents[pi] = replace(fake_gateway.intents[pi], status="canceled")

    run_lapse_job()

    order.refresh_from_db()
    assert order.payment_status == "voided"  # what Stripe says, recorded
    (flag,) = Attention.objects.filter(order=order, code="authorization_expiring")
    assert "could not capture" in flag.detail
    assert audited(order, "order.captured") == []
    assert run_lapse_job() == []  # no longer an open authorisation


def test_given_a_job_not_run_yet_when_the_next_hour_comes_then_no_second_job(
    fake_gateway, settings
):
    settings.SHOPKEEPER_AUTH_EXPIRY_ACTION = "void"
    authorised_ago(authorised_order(fake_gateway), EXPIRE)
    now = int(timezone.now().timestamp())

    assert find_lapsing_authorisations(timestamp=now) == 1
    assert find_lapsing_authorisations(timestamp=now + 3600) == 0  # queueing lock lapse:<pi>

    runs = run_jobs()
    assert [(run.task_name, run.outcome) for run in runs] == [
        ("orders.act_on_lapsing_authorisation", "succeeded")
    ]
    assert stripe_moves(fake_gateway) == ["cancel_payment_intent"]


@pytest.mark.periodic_ticks
def test_the_lapse_job_is_hourly_and_carries_the_payment_intents_lock(fake_gateway, settings):
    from procrastinate.contrib.django import app

    (periodic,) = [
        task
        for task in app.periodic_registry.periodic_tasks.values()
        if task.task.name == "orders.find_lapsing_authorisations"
    ]
    assert periodic.cron == "17 * * * *"
    settings.SHOPKEEPER_AUTH_EXPIRY_ACTION = "notify"
    order = authorised_ago(authorised_order(fake_gateway), EXPIRE)
    find_lapsing_authorisations(timestamp=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lock FROM procrastinate_jobs WHERE task_name = %s",
            ["orders.act_on_lapsing_authorisation"],
        )
        assert cursor.fetchall() == [(f"stripe:{intent_id(order)}",)]


def test_given_expiring_authorisations_then_status_and_metrics_count_them(fake_gateway, manager):
    from shopkeeper import health

    orders_by_age(fake_gateway, manager)

    _, value = health.read_counts()["authorizations_expiring"]
    assert value == 2
