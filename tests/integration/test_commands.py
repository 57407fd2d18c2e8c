"""The `shopkeeper` commands: createuser, createtoken, seed and serve."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from shopkeeper.accounts.models import ApiToken, User
from shopkeeper.audit.models import AuditEntry
from shopkeeper.catalog.models import Product
from shopkeeper.demo import data as demo
from shopkeeper.demo.stories import NO_STORY
from shopkeeper.errors import PaymentOutcomeUnknown
from shopkeeper.fulfilment.models import Shipment, ShipmentLine
from shopkeeper.notifications.models import Notification
from shopkeeper.orders.models import Order
from shopkeeper.payments.ledger import EntryKind
from shopkeeper.payments.models import LedgerEntry
from shopkeeper.refunds.models import Refund
from shopkeeper.returns.models import Return
from shopkeeper.server.gunicorn_app import ShopkeeperServer, server_options
from tests.conftest import free_port
from tests.fakes import FakeGateway
from tests.integration.server_process import shared_database_url


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def createuser(email: str, password: str, role: str) -> str:
    return run("createuser", "--email", email, "--password", password, "--role", role)[0]


# --- createuser ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_given_valid_details_when_createuser_then_the_user_exists_with_role_and_audit() -> None:
    out = createuser("Sam@Example.com", "long-enough-1", "support")

    user = User.objects.get(email="sam@example.com")
    assert user.role == "support" and user.check_password("long-enough-1")
    assert "Created support sam@example.com" in out
    entry = AuditEntry.objects.get(action="user.created")
    assert (entry.target_label, entry.actor_email) == ("sam@example.com", "Shopkeeper CLI")
    assert "long-enough-1" not in str(entry.after) + str(entry.details)


@pytest.mark.django_db
def test_given_an_unknown_role_when_createuser_then_a_readable_error_lists_the_roles() -> None:
    with pytest.raises(
        CommandError, match=r"Unknown role 'admin'.*owner, manager, support, viewer"
    ):
        createuser("x@example.com", "long-enough-1", "admin")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_given_a_taken_email_when_createuser_then_a_readable_error_and_one_user() -> None:
    createuser("sam@example.com", "long-enough-1", "viewer")
    with pytest.raises(CommandError, match=r"already exists.*email_taken"):
        createuser("SAM@example.com", "other-pass-2", "owner")
    assert User.objects.get().role == "viewer"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("email", "password", "message"),
    [("not-an-email", "long-enough-1", "not a valid e-mail"), ("a@example.com", "short", "short")],
)
def test_given_bad_input_when_createuser_then_nothing_is_created(
    email: str, password: str, message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run("createuser", "--email", email, "--password", password, "--role", "viewer")
    assert not User.objects.exists()


# --- createtoken --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_given_a_user_when_createtoken_then_its_last_line_is_a_working_bearer_token() -> None:
    createuser("bot@example.com", "long-enough-1", "viewer")

    out, _ = run("createtoken", "--email", "bot@example.com", "--name", "reporting")
    raw = out.rstrip("\n").splitlines()[-1]

    assert raw == raw.strip() and " " not in raw and raw.startswith("shk_")
    response = Client().get("/api/admin/products", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 200, response.content
    token = ApiToken.objects.get()
    assert token.name == "reporting"
    assert token.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert AuditEntry.objects.filter(action="token.created").count() == 1
    assert raw not in str(list(AuditEntry.objects.values()))


@pytest.mark.django_db
def test_given_a_wrong_token_then_the_api_refuses_it() -> None:
    createuser("bot@example.com", "long-enough-1", "viewer")
    run("createtoken", "--email", "bot@example.com")

    response = Client().get("/api/admin/products", HTTP_AUTHORIZATION="Bearer shk_not-the-token")

    assert response.status_code == 401


@pytest.mark.django_db
def test_given_an_unknown_email_when_createtoken_then_a_readable_error_and_no_token() -> None:
    with pytest.raises(CommandError, match="No user has the e-mail address"):
        run("createtoken", "--email", "nobody@example.com")
    assert not ApiToken.objects.exists()


# --- seed ---------------------------------------------------------------------------------------


def _snapshot() -> dict[str, object]:
    return {
        "products": sorted(Product.objects.values_list("sku", "stock")),
        "users": sorted(User.objects.values_list("email", "role")),
        "orders": sorted(Order.objects.values_list("number", "status", "payment_status")),
        "ledger": LedgerEntry.objects.count(),
        "shipments": sorted(Shipment.objects.values_list("order__number", "status")),
        "returns": sorted(Return.objects.values_list("order__number", "source", "status")),
        "refunds": sorted(Refund.objects.values_list("order__number", "status")),
        "audit": AuditEntry.objects.count(),
        "mails": Notification.objects.count(),
    }


@pytest.mark.django_db
def test_given_an_empty_database_when_seeding_then_catalog_accounts_and_orders_exist(
    fake_gateway: FakeGateway,
) -> None:
    out, _ = run("seed")

    assert {p.currency for p in Product.objects.all()} == {"USD", "JPY", "KWD"}
    assert dict(User.objects.values_list("email", "role")) == {
        email: role.value for role, email in demo.DEMO_USERS.items()
    }
    owner = User.objects.get(email="owner@example.com")
    assert owner.check_password(demo.DEMO_PASSWORD)
    assert out.rstrip().splitlines()[-1] == f"Owner login: owner@example.com / {demo.DEMO_PASSWORD}"
    states = {o.email: (o.status, o.payment_status) for o in Order.objects.all()}
    assert states == {
        "ada@example.com": ("processing", "paid"),
        "grace@example.com": ("processing", "authorized"),
        "linus@example.com": ("pending", "pending"),
        "margaret@example.com": ("pending", "failed"),
        "yukihiro@example.com": ("processing", "paid"),
        "fatima@example.com": ("processing", "paid"),
        "alan@example.com": ("processing", "paid"),
        "barbara@example.com": ("closed", "paid"),
        "edsger@example.com": ("closed", "paid"),
        "katherine@example.com": ("closed", "partially_refunded"),
    }
    # Paid through the ledger, in each order's currency, for the order's exact total.
    for order in Order.objects.filter(payment_status="paid"):
        capture = LedgerEntry.objects.get(order=order, kind=EntryKind.CAPTURE)
        assert (capture.amount_minor, capture.currency) == (order.grand_total_minor, order.currency)
    grace = Order.objects.get(email="grace@example.com")
    assert fake_gateway.intents[grace.payments.get().intent_id].capture_method == "manual"
    assert not LedgerEntry.objects.filter(order=grace, kind=EntryKind.CAPTURE).exists()


@pytest.mark.django_db
def test_given_an_empty_database_when_seeding_then_orders_are_shipped_returned_and_noted(
    fake_gateway: FakeGateway,
) -> None:
    run("seed")

    by_email = {o.email: o for o in Order.objects.all()}
    shipments = {
        email: sorted(
            (line.order_line.sku, line.quantity, line.shipment.status)
            for line in ShipmentLine.objects.filter(shipment__order=order)
        )
        for email, order in by_email.items()
    }
    assert {email: lines for email, lines in shipments.items() if lines} == {
        "alan@example.com": [("MUG-ENAMEL", 1, "shipped")],
        "barbara@example.com": [("NOTEBOOK-DOT", 3, "delivered")],
        "edsger@example.com": [("NOTEBOOK-DOT", 1, "delivered"), ("TEE-ORGANIC", 1, "delivered")],
        "katherine@example.com": [("CAP-CANVAS", 2, "delivered")],
    }
    returns = {
        r.order.email: (r.source, r.status, [(x.order_line.sku, x.quantity) for x in r.lines.all()])
        for r in Return.objects.select_related("order")
    }
    assert returns == {
        "edsger@example.com": ("customer", "requested", [("TEE-ORGANIC", 1)]),
        "katherine@example.com": ("customer", "refunded", [("CAP-CANVAS", 1)]),
    }
    refund = Return.objects.get(order__email="katherine@example.com").refund
    assert refund is not None and refund.status == "succeeded"
    assert refund.amount_minor == 1850  # the one returned cap, no shipping
    # Received back into stock: 30 at first, 1 for linus, 1 for alan, 2 for katherine, 1 back.
    assert Product.objects.get(sku="CAP-CANVAS").stock == 30 - 1 - 1 - 2 + 1
    notes = AuditEntry.objects.filter(action="order.note")
    assert [(n.target_id, n.actor_email) for n in notes] == [
        (by_email["alan@example.com"].number, demo.OWNER_EMAIL)
    ]


@pytest.mark.django_db
def test_given_demo_orders_placed_without_their_story_when_seeding_again_then_it_is_finished(
    fake_gateway: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A seed cut short after placing the orders: the same orders, none of their later steps.
    untold = tuple(dataclasses.replace(o, story=NO_STORY) for o in demo.DEMO_ORDERS)
    monkeypatch.setattr(demo, "DEMO_ORDERS", untold)
    run("seed")
    assert not Shipment.objects.exists() and not Return.objects.exists()
    monkeypatch.undo()

    out, _ = run("seed")

    assert re.search(r"return \d+ refunded \(succeeded\)\n    now closed/partially_refunded", out)
    assert Order.objects.count() == len(demo.DEMO_ORDERS)
    assert sorted(Return.objects.values_list("order__email", "status")) == [
        ("edsger@example.com", "requested"),
        ("katherine@example.com", "refunded"),
    ]
    assert Shipment.objects.count() == 4


@pytest.mark.django_db
def test_given_a_seeded_database_when_seeding_again_then_nothing_changes() -> None:
    run("seed")
    before = _snapshot()

    out, _ = run("seed")

    assert _snapshot() == before
    assert "created" not in out
    assert out.rstrip().splitlines()[-1].startswith("Owner login: owner@example.com / ")


@pytest.mark.django_db
def test_given_a_changed_owner_password_when_seeding_again_then_it_is_kept_and_not_printed() -> (
    None
):
    run("seed", "--no-orders")
    owner = User.objects.get(email="owner@example.com")
    owner.set_password("changed-by-owner")
    owner.save()

    out, _ = run("seed", "--no-orders")

    owner.refresh_from_db()
    assert owner.check_password("changed-by-owner")
    assert demo.DEMO_PASSWORD not in out


@pytest.mark.django_db
def test_given_no_orders_flag_when_seeding_then_no_order_and_no_stripe_call(
    fake_gateway: FakeGateway,
) -> None:
    run("seed", "--no-orders")

    assert Product.objects.count() == len(demo.DEMO_PRODUCTS)
    assert not Order.objects.exists() and fake_gateway.calls == []


@pytest.mark.django_db
def test_given_stripe_unreachable_when_seeding_then_a_readable_error_and_stock_is_returned(
    fake_gateway: FakeGateway,
) -> None:
    fake_gateway.fail_next["create_payment_intent"] = [PaymentOutcomeUnknown("timed out")]

    with pytest.raises(CommandError, match=r"Demo orders need a reachable Stripe.*--no-orders"):
        run("seed")

    # The catalog and accounts are there; the one attempted order was abandoned, stock returned.
    assert dict(Product.objects.values_list("sku", "stock")) == {
        sku: stock for sku, _, _, _, stock in demo.DEMO_PRODUCTS
    }
    assert [o.status for o in Order.objects.all()] == ["cancelled"]
    # Once Stripe answers, seeding again completes the demo orders.
    run("seed")
    assert Order.objects.exclude(status="cancelled").count() == len(demo.DEMO_ORDERS)


# --- serve --------------------------------------------------------------------------------------


def test_serve_configures_gunicorn_not_runserver() -> None:
    options = server_options(host="127.0.0.1", port=8123, workers=3, threads=2)
    server = ShopkeeperServer(options)

    assert server.cfg.bind == ["127.0.0.1:8123"]
    assert (server.cfg.workers, server.cfg.threads) == (3, 2)
    assert server.cfg.worker_class_str == "shopkeeper.server.worker.BufferingWorker"


def _subprocess_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "SHOPKEEPER_"))}
    env["DATABASE_URL"] = shared_database_url()  # the test database, already migrated
    env["SHOPKEEPER_DATA_DIR"] = str(tmp_path)
    return env


@pytest.mark.django_db(transaction=True)
def test_given_a_migrated_database_when_serving_then_gunicorn_answers_http(tmp_path: Path) -> None:
    env, port = _subprocess_env(tmp_path), free_port()
    shopkeeper = [sys.executable, "-m", "shopkeeper"]
    subprocess.run([*shopkeeper, "migrate", "-v0"], env=env, check=True, timeout=120)
    server = subprocess.Popen(
        [*shopkeeper, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        status = _get_status(f"http://127.0.0.1:{port}/admin/", deadline=time.monotonic() + 60)
        assert status in (200, 302)
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    assert "gunicorn" in output.lower()
    assert server.returncode == 0, output


def _get_status(url: str, *, deadline: float) -> int:
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
