"""`shopkeeper reconcile` as scripts and cron run it: exit codes, the human report, --json, and a
progress bar only on a terminal."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.payments.models import Payment
from shopkeeper.refunds.models import Refund
from tests.factories import paid_order, requested_refund, staff
from tests.fakes import AlwaysLost

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(*args: str, stdout: io.StringIO | None = None) -> tuple[int, str]:
    """The command's exit status and what it printed."""
    out = stdout or io.StringIO()
    try:
        call_command("reconcile", *args, stdout=out)
    except CommandError as error:
        return error.returncode, out.getvalue()
    return 0, out.getvalue()


def dashboard_refund(fake_gateway) -> str:
    order = paid_order(fake_gateway)
    fake_gateway.refund_outside(Payment.objects.get(order=order).intent_id, 700)
    return order.number


def test_given_books_agree_then_exit_0_and_a_one_line_report(fake_gateway):
    paid_order(fake_gateway)

    status, out = run()

    assert status == 0
    assert out == "Checked 1 PaymentIntent(s) against Stripe: 0 difference(s).\n"


def test_given_a_difference_then_exit_1_until_fixed_then_0(fake_gateway):
    number = dashboard_refund(fake_gateway)

    status, out = run()
    assert status == 1
    assert f"{number} " in out and "A refund at Stripe is not in our books" in out
    assert "Run again with --fix" in out and not Refund.objects.exists()

    status, out = run("--fix")
    assert status == 0 and "1 fixed, 0 remaining" in out and "(fixed)" in out
    assert run("--fix") == (
        0,
        "Checked 1 PaymentIntent(s) against Stripe: 0 difference(s), 0 fixed, 0 remaining.\n",
    )


def test_given_json_then_the_report_is_machine_readable(fake_gateway):
    number = dashboard_refund(fake_gateway)

    status, out = run("--json", "--order", number)

    report = json.loads(out)
    assert status == 1 and report["exit_code"] == 1 and report["order"] == number
    (difference,) = report["differences"]
    assert difference["kind"] == "refund_missing_here" and difference["fix"] == "settle_refund"
    assert difference["order"] == number and difference["fixed"] is False


def test_given_since_date_then_accepted_and_a_bad_date_is_a_usage_error(fake_gateway):
    paid_order(fake_gateway)

    assert run("--since", "2020-01-31")[0] == 0
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("reconcile", "--since", "31/01/2020")


def test_given_since_a_duration_or_a_moment_then_the_window_starts_then(fake_gateway):
    paid_order(fake_gateway)

    status, report = run("--since", "24h", "--json")
    start = datetime.fromisoformat(json.loads(report)["since"])
    assert status == 0 and abs(start - (timezone.now() - timedelta(hours=24))) < timedelta(
        minutes=1
    )
    assert json.loads(run("--since", "2020-01-31T06:30", "--json")[1])["since"].startswith(
        "2020-01-31 06:30"
    )
    with pytest.raises(CommandError, match="24h"):
        call_command("reconcile", "--since", "24 hours")


def test_given_unknown_order_then_exit_2(fake_gateway):
    status, _ = run("--order", "SK-NOPE")
    assert status == 2


def test_given_stripe_unreachable_then_exit_2(fake_gateway, monkeypatch):
    paid_order(fake_gateway)

    def down(**kwargs):
        raise PaymentOutcomeUnknown("Stripe did not answer the list payments request")

    monkeypatch.setattr(fake_gateway, "list_payment_intents", down)

    status, out = run()

    assert status == 2 and "not checked: listing PaymentIntents" in out


def test_given_a_terminal_then_a_progress_bar_else_none(fake_gateway, capsys):
    paid_order(fake_gateway)
    paid_order(fake_gateway)

    run()
    assert "[" not in capsys.readouterr().out  # not a terminal: no bar anywhere

    run(stdout=Terminal())
    drawn = capsys.readouterr().out
    assert "\r[###############               ] 1/2" in drawn
    assert "\r[##############################] 2/2" in drawn


@pytest.mark.refund_retry_delays(0)  # one retry, lost as the first attempt
def test_reconcile_refunds_is_an_alias_of_reconcile_fix(fake_gateway, manager_refund_lost):
    out = io.StringIO()

    call_command("reconcile_refunds", "--older-than", "0", "--json", stdout=out)

    report = json.loads(out.getvalue())
    assert report["fix"] is True and report["fixed"] == 1 and report["exit_code"] == 0
    assert Refund.objects.get().status == "succeeded"


@pytest.fixture
def manager_refund_lost(fake_gateway):
    order = paid_order(fake_gateway)
    return requested_refund(
        order,
        actor=staff("manager"),
        amount="3.00",
        reason="other",
        gateway=AlwaysLost(fake_gateway),
    )
