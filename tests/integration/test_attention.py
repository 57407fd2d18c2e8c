"""An order flagged for a person shows everywhere staff look: the order page's banner, the
orders list filter, the API and `reconcile`; `shopkeeper attention resolve` closes it, audited."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction

from shopkeeper.audit.models import AuditEntry
from shopkeeper.orders.attention import REFUND_EXCEEDS_CAPTURED, flag_order
from shopkeeper.orders.models import Order
from tests.factories import paid_order, staff

pytestmark = pytest.mark.django_db


def flag(order: Order) -> None:
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        flag_order(
            locked,
            code=REFUND_EXCEEDS_CAPTURED,
            subject="re_over",
            detail="Stripe reports refund re_over of 30.00 USD; not booked",
        )


def command(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command(*args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def test_given_a_flagged_order_then_banner_on_its_page_and_the_list_filter_finds_it(
    viewer, fake_gateway
):
    flagged = paid_order(fake_gateway, price="10.50", email="flagged@example.com")
    calm = paid_order(fake_gateway, price="10.50", email="calm@example.com")
    flag(flagged)
    flag(flagged)  # the same news again: one flag, one audit row

    page = viewer.get(f"/admin/orders/{flagged.number}").content.decode()
    listed = viewer.get("/admin/orders?needs_attention=true").content.decode()

    assert 'data-testid="attention-banner"' in page and "refund_exceeds_captured" in page
    assert "re_over of 30.00 USD" in page
    assert (
        'data-testid="attention-banner"'
        not in viewer.get(f"/admin/orders/{calm.number}").content.decode()
    )
    assert re.findall(r'<tr data-order="([^"]+)"', listed) == [flagged.number]
    assert 'data-testid="needs-attention"' in listed
    assert AuditEntry.objects.filter(action="order.attention_flagged").count() == 1


def test_given_a_flagged_order_when_resolved_with_a_note_then_reconcile_is_clean_again(
    fake_gateway,
):
    order = paid_order(fake_gateway, price="10.50")
    flag(order)
    assert command("reconcile", "--order", order.number)[0] == 1
    owner = staff("owner")

    assert command("attention", "resolve", order.number, "--note", "")[0] == 1
    status, output = command(
        "attention", "resolve", order.number, "--note", "refunded by hand", "--by", owner.email
    )

    assert status == 0 and "1 flag(s) resolved" in output
    assert command("reconcile", "--order", order.number)[0] == 0
    resolved = AuditEntry.objects.get(action="order.attention_resolved")
    assert resolved.actor_email == owner.email and resolved.details["note"] == "refunded by hand"
    assert "0 open flag(s)" in command("attention", "list")[1]
