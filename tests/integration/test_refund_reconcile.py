"""`reconcile_refunds`, kept as an alias of `reconcile --fix` for payments with a refund pending.

The cases themselves are proven in test_reconcile.py."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from shopkeeper.refunds.models import Refund
from tests.factories import paid_order, requested_refund
from tests.fakes import AlwaysLost

pytestmark = pytest.mark.django_db


def creations(gateway) -> int:
    return sum(1 for op, _ in gateway.calls if op == "create_refund")


def test_reconcile_refunds_command_reports_what_it_did(fake_gateway, manager):
    order = paid_order(fake_gateway)
    requested_refund(
        order,
        actor=manager,
        amount="3.00",
        reason="other",
        gateway=AlwaysLost(fake_gateway),
    )
    out = StringIO()

    call_command("reconcile_refunds", "--older-than", "0", stdout=out)  # alias of reconcile --fix

    assert "1 difference(s), 1 fixed, 0 remaining" in out.getvalue()
    assert Refund.objects.get().status == "succeeded"
