"""The hot paths' statements written by hand (shopkeeper.rows) and answers shaped by plain
pydantic twins (shopkeeper.answers) give what the ORM and ninja's Schemas give (issue 9: CPU
per request)."""

from __future__ import annotations

import json

import pydantic
import pytest
from django.db import connection, transaction
from django.utils import timezone

from shopkeeper.accounts.models import ApiToken
from shopkeeper.answers import shaped
from shopkeeper.orders.locks import lock_order
from shopkeeper.orders.models import Order
from shopkeeper.orders.schemas import OrderOut
from shopkeeper.orders_view.selectors import order_detail
from shopkeeper.refunds.models import Refund
from shopkeeper.refunds.schemas import RefundWithOrderOut
from shopkeeper.rows import columns, instance, instance_from_json
from tests.factories import paid_order, requested_refund, staff, token_for
from tests.integration.refund_fixtures import Api

pytestmark = pytest.mark.django_db


def fields_of(row: object) -> dict[str, object]:
    return {f.attname: getattr(row, f.attname) for f in type(row)._meta.concrete_fields}


def test_given_an_order_when_locked_by_hand_then_the_same_instance_as_the_orm_reads(
    fake_gateway,
):
    order = paid_order(fake_gateway)

    with transaction.atomic():
        by_number = lock_order(number=order.number)
        by_pk = lock_order(pk=order.pk)

    expected = fields_of(Order.objects.get(pk=order.pk))
    assert fields_of(by_number) == fields_of(by_pk) == expected
    assert isinstance(by_number.shipping_address, dict)  # the JSON column decoded
    assert by_number.created_at.tzinfo is not None
    assert not by_number._state.adding  # saved as an update, as an ORM-read row is


def test_given_rows_as_columns_and_as_json_then_both_read_back_as_the_orm_reads_them(
    fake_gateway,
):
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=staff("manager"), amount="5.00")
    table = Refund._meta.db_table

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns(Refund, 'r')} FROM {table} r WHERE r.id = %s", [refund.pk])
        from_columns = instance(Refund, cursor.fetchone())
        cursor.execute(f"SELECT to_jsonb(r) FROM {table} r WHERE r.id = %s", [refund.pk])
        as_json = cursor.fetchone()[0]
    from_json = instance_from_json(
        Refund, json.loads(as_json) if isinstance(as_json, str) else as_json
    )

    expected = fields_of(Refund.objects.get(pk=refund.pk))
    assert fields_of(from_columns) == expected
    assert fields_of(from_json) == expected  # the key (a UUID) and the dates converted


def test_given_an_order_detail_then_the_twin_shapes_it_as_the_ninja_schema_does(fake_gateway):
    order = paid_order(fake_gateway)
    refund = requested_refund(order, actor=staff("manager"), amount="5.00")
    detail = order_detail(order)
    data = {"refund": detail["refunds"][0], "order": {**detail, "not_in_the_schema": 1}}

    answer = shaped(RefundWithOrderOut, data)

    assert answer == RefundWithOrderOut.model_validate(data).model_dump()
    assert "not_in_the_schema" not in answer["order"] and answer["refund"]["id"] == refund.pk


def test_given_an_answer_missing_a_field_then_the_twin_refuses_it_like_the_schema():
    with pytest.raises(pydantic.ValidationError):
        OrderOut.model_validate({"number": "SK-1"})
    with pytest.raises(pydantic.ValidationError):
        shaped(OrderOut, {"number": "SK-1"})


def test_given_tokens_revoked_or_of_a_deactivated_user_then_the_hand_written_lookup_refuses_them(
    fake_gateway,
):
    manager = staff("manager")
    kept, revoked = Api(token_for(manager, name="kept")), Api(token_for(manager, name="revoked"))
    ApiToken.objects.filter(name="revoked").update(revoked_at=timezone.now())

    assert kept.get("/api/admin/orders").status_code == 200
    assert revoked.get("/api/admin/orders").status_code == 401

    manager.is_active = False
    manager.save(update_fields=["is_active"])
    assert kept.get("/api/admin/orders").status_code == 401
