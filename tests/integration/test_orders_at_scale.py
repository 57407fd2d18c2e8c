"""The orders list at scale, on small data: `seed --orders` (sealed audit chains, books that
reconcile), keyset pages across equal timestamps, filters and search returning exactly the
right rows, with and without the trigram indexes, and the SQL shapes the indexes need."""

from __future__ import annotations

import importlib
import io
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction

from shopkeeper.audit.models import AuditEntry
from shopkeeper.demo import bulk
from shopkeeper.orders.attention import flag_order, resolve_attention
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.models import Order
from shopkeeper.orders_view import queries
from shopkeeper.orders_view.selectors import list_orders
from shopkeeper.payments.gateway import IntentSnapshot, RefundSnapshot
from shopkeeper.payments.ledger import Movement, balance_of, payment_status_for
from shopkeeper.payments.models import LedgerEntry, Payment
from shopkeeper.reconciliation.services import reconcile
from shopkeeper.refunds.models import Refund
from tests.fakes import FakeGateway

pytestmark = pytest.mark.django_db

trigram = importlib.import_module("shopkeeper.orders.migrations.0004_order_search_trigram_indexes")


@pytest.fixture
def seeded() -> list[Order]:
    out = io.StringIO()
    call_command("seed", orders=200, random_seed=5, stdout=out)
    assert "200 orders" in out.getvalue()
    return list(Order.objects.order_by("-created_at", "-id"))


def every_page(limit: int = 7, **filters: Any) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        page = list_orders(cursor=cursor, limit=limit, **filters)
        seen += [item["number"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


def test_seeded_orders_pass_audit_verify(seeded):
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)  # raises CommandError on any problem

    entries = AuditEntry.objects.count()
    assert out.getvalue().startswith(f"OK {entries} entries"), out.getvalue()
    assert entries > 2 * len(seeded)
    placed = AuditEntry.objects.filter(action="order.placed", target_type="order")
    assert placed.count() == len(seeded)


def test_seeded_orders_have_a_realistic_mix(seeded):
    statuses = {(o.status, o.payment_status) for o in seeded}
    assert {("processing", "paid"), ("pending", "pending"), ("cancelled", "voided")} <= statuses
    assert len(statuses) >= 5
    assert len({o.email for o in seeded}) > len(seeded) // 4
    assert max(o.created_at for o in seeded) - min(o.created_at for o in seeded) > timedelta(
        days=200
    )
    assert Refund.objects.filter(status="succeeded").exists()
    assert all(o.shipping_address["name"] for o in seeded)


def test_seeded_books_agree_with_every_order_and_reconcile_finds_nothing(seeded):
    """The ledger proves each order's payment status, and reconcile, comparing with a Stripe
    that holds the PaymentIntents and refunds the rows name, finds no difference."""
    for order in seeded:
        balance = balance_of(
            Movement(kind, amount)
            for kind, amount in LedgerEntry.objects.filter(order=order).values_list(
                "kind", "amount_minor"
            )
        )
        assert payment_status_for(balance, order.payment_status) == order.payment_status, order

    report = reconcile(gateway=stripe_as_seeded(), in_flight=timedelta(0))

    assert report.checked == len(seeded)
    assert [finding for finding in report.findings] == []
    assert report.unreachable == []


def stripe_as_seeded() -> FakeGateway:
    gateway = FakeGateway()
    for payment in Payment.objects.select_related("order"):
        status = payment.intent_status
        gateway.intents[payment.intent_id] = IntentSnapshot(
            id=payment.intent_id,
            status=status,  # type: ignore[arg-type]
            amount=payment.amount_minor,
            currency=payment.currency,
            capture_method=payment.capture_method,
            client_secret=payment.client_secret,
            amount_received=payment.amount_minor if status == "succeeded" else 0,
            amount_capturable=payment.amount_minor if status == "requires_capture" else 0,
            order_number=payment.order.number,
            charge_id=payment.charge_id,
            card_brand=payment.card_brand,
            last_error=payment.last_error,
            created=int(payment.created_at.timestamp()),
        )
    for refund in Refund.objects.exclude(stripe_refund_id=None).select_related("payment"):
        assert refund.stripe_refund_id is not None
        gateway.refunds[refund.stripe_refund_id] = RefundSnapshot(
            id=refund.stripe_refund_id,
            status="succeeded",  # type: ignore[arg-type]
            amount=refund.amount_minor,
            currency=refund.currency,
            payment_intent_id=refund.payment.intent_id,
            charge_id=refund.payment.charge_id,
            metadata={"refund_key": str(refund.key)},
            created=int(refund.created_at.timestamp()),
        )
    return gateway


def test_keyset_pages_list_every_order_once_across_equal_timestamps(seeded):
    # Groups of orders share one instant, across page boundaries (pages of 7).
    for start in range(0, 60, 12):
        same = [o.pk for o in seeded[start : start + 9]]
        Order.objects.filter(pk__in=same).update(created_at=seeded[start].created_at)
    expected = [o.number for o in Order.objects.order_by("-created_at", "-id")]

    assert every_page() == expected
    processing = [
        o.number for o in Order.objects.filter(status="processing").order_by("-created_at", "-id")
    ]
    assert every_page(status="processing") == processing


@pytest.mark.parametrize(
    "filters",
    [
        {"status": "processing"},
        {"status": "cancelled"},
        {"payment_status": "paid"},
        {"payment_status": "partially_refunded"},
        {"status": "processing", "payment_status": "authorized"},
        {"status": "pending", "payment_status": "failed"},
    ],
)
def test_filters_list_exactly_their_orders(seeded, filters):
    expected = [o.number for o in seeded if all(getattr(o, k) == v for k, v in filters.items())]

    assert expected
    assert every_page(**filters) == expected


def test_needs_attention_lists_exactly_the_flagged_orders(seeded):
    flagged = {o.number for o in seeded if o.attention.filter(resolved_at=None).exists()}
    Order.objects.filter(number=seeded[0].number).update(status="processing")

    assert set(every_page(needs_attention=True)) == flagged
    assert set(every_page(needs_attention=False)) == {o.number for o in seeded} - flagged


def test_flagging_and_resolving_move_an_order_in_and_out_of_the_flagged_list(seeded):
    order = next(o for o in seeded if not o.needs_attention)
    with transaction.atomic():
        flag_order(lock_order(number=order.number), code="payment_mismatch", detail="test")

    assert order.number in every_page(needs_attention=True)
    assert order.number not in every_page(needs_attention=False)
    assert list_orders(q=order.number)["items"][0]["needs_attention"] is True

    assert resolve_attention(order_number=order.number, actor=None, note="checked") == 1
    assert order.number not in every_page(needs_attention=True)
    assert Order.objects.get(pk=order.pk).needs_attention is False


def search_cases(orders: list[Order]) -> dict[str, str]:
    order = orders[len(orders) // 2]
    name = order.shipping_address["name"]
    return {
        "whole number": order.number,
        "number in lower case": order.number.lower(),
        "part of a number": order.number[-4:].lower(),
        "whole e-mail": order.email.upper(),
        "part of an e-mail": order.email.split("@")[0][1:6],
        "e-mail domain": "@" + order.email.split("@")[1],
        "customer name": name.lower(),
        "part of a name": name.split()[-1][:5],
        "nothing": "no-such-order-anywhere",
        "a LIKE wildcard, literally": "a%b",
        "an underscore, literally": "a_b",
    }


def expected_for(term: str, orders: list[Order]) -> list[str]:
    t = term.lower()
    exact = [o.number for o in orders if t in (o.number.lower(), o.email.lower())]
    if exact:
        return exact
    return [
        o.number
        for o in orders
        if t in o.number.lower() or t in o.email.lower() or t in o.shipping_address["name"].lower()
    ]


def test_search_finds_number_email_and_name_wholly_or_in_part(seeded):
    for label, term in search_cases(seeded).items():
        assert every_page(q=term) == expected_for(term, seeded), label
    assert every_page(q=seeded[3].number) == [seeded[3].number]


def test_a_whole_e_mail_finds_that_customer_not_those_whose_address_contains_it(seeded):
    ada, lada = seeded[1], seeded[2]
    Order.objects.filter(pk=ada.pk).update(email="ada@example.net")
    Order.objects.filter(pk=lada.pk).update(email="lada@example.net")

    assert every_page(q="ADA@example.net") == [ada.number]
    assert every_page(q="da@example.ne") == [ada.number, lada.number]


def test_search_without_the_trigram_indexes_finds_the_same_orders(seeded):
    """Where pg_trgm is missing the migration creates nothing, and search stays correct."""
    trigram.drop_trigram_indexes(connection)
    assert trigram_indexes() == set()
    assert trigram.add_trigram_indexes(connection, available=False) == []
    assert trigram_indexes() == set()

    for label, term in search_cases(seeded).items():
        assert every_page(q=term) == expected_for(term, seeded), label

    if not trigram.trigram_available(connection):
        pytest.skip("this PostgreSQL has no pg_trgm (the embedded wheel): nothing to add back")
    assert trigram.add_trigram_indexes(connection) == list(trigram.TRIGRAM_INDEXES)
    assert trigram_indexes() == set(trigram.TRIGRAM_INDEXES)


def trigram_indexes() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'orders_order' "
            "AND indexdef LIKE '%%gin_trgm_ops%%'"
        )
        return {row[0] for row in cursor.fetchall()}


def plan_of(*, off: tuple[str, ...] = ("seqscan", "sort"), **filters: Any) -> str:
    """The plan of the list's statement, with the plans `off` priced out (the planner reads a
    table this small whole): what remains shows what the indexes can do."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        list_orders(limit=25, **filters)
    sql = next(q["sql"] for q in captured.captured_queries if 'FROM "orders_order"' in q["sql"])
    with transaction.atomic(), connection.cursor() as cursor:
        for plan in off:
            cursor.execute(f"SET LOCAL enable_{plan} = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def keyset_in_index_cond(plan: str) -> bool:
    """The cursor's row comparison is an index condition (alone, or after the filters' equality
    columns of their own keyset index), not a filter on the rows read."""
    return any(
        "Index Cond: (" in line and "ROW(created_at, id) < ROW(" in line
        for line in plan.splitlines()
    )


def test_a_keyset_page_is_one_index_range(seeded):
    cursor = list_orders(limit=25)["next_cursor"]

    plan = plan_of(cursor=cursor)
    assert keyset_in_index_cond(plan), plan
    plan = plan_of(cursor=cursor, status="processing", payment_status="paid")
    assert keyset_in_index_cond(plan), plan


def explained(orders: Any) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        return orders.explain()


def test_search_looks_up_whole_values_in_b_trees_and_parts_in_trigram_indexes(seeded):
    if not trigram.trigram_available(connection):
        pytest.skip("this PostgreSQL has no pg_trgm (the embedded wheel)")

    plan = explained(Order.objects.filter(queries.exactly(seeded[0].number)))
    assert "orders_order_number" in plan and "order_email_lower_idx" in plan, plan
    assert "trgm" not in plan, plan
    plan = explained(Order.objects.filter(queries.containing("lovel")))
    assert "order_email_trgm_idx" in plan and "order_name_trgm_idx" in plan, plan
    assert "order_number_trgm_idx" in plan, plan


def test_the_approval_queue_reads_its_own_index():
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM refunds_refund WHERE status = 'awaiting_approval' "
            "ORDER BY id DESC LIMIT 50"
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "refund_status_newest_idx" in plan, plan
    assert "Sort" not in plan, plan


def test_bulk_numbers_are_distinct_and_look_like_checkouts():
    numbers = {bulk.order_number(i) for i in range(1, 20_001)}

    assert len(numbers) == 20_000
    assert all(len(n) == 11 and n.startswith("SK-") for n in numbers)
