"""localstripe's quirks live in `EmulatorGateway` alone, chosen only when STRIPE_API_BASE is set.

Against the recorder (tests/stripe_recorder.py) answering in localstripe's shapes; the real
client's requests are in test_stripe_requests.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from shopkeeper.money import Money
from shopkeeper.payments.provider import gateway_from_settings
from shopkeeper.payments.stripe.client import STRIPE_API_VERSION, StripeGateway
from shopkeeper.payments.stripe.emulator import EmulatorGateway
from shopkeeper.payments.stripe_statuses import IntentStatus
from tests import stripe_recorder as canned
from tests.stripe_recorder import StripeRecorder

# localstripe's PaymentIntent: no amount_received / amount_capturable, the charge inline.
LOCALSTRIPE_CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "status": "succeeded",
    "amount": 2500,
    "amount_refunded": 1000,  # the uncaptured rest of a partial capture, booked as a refund
    "captured": True,
    "currency": "usd",
    "payment_intent": "pi_1",
    "payment_method": "pm_1",
}


def localstripe_intent(status: str) -> dict:
    intent = canned.intent(status=status, latest_charge=LOCALSTRIPE_CHARGE)
    intent["charges"] = {"object": "list", "data": [LOCALSTRIPE_CHARGE]}
    del intent["amount_received"], intent["amount_capturable"]
    return intent


@pytest.fixture
def emulator(recorder: StripeRecorder) -> EmulatorGateway:
    return EmulatorGateway(
        secret_key="sk_test_x", webhook_secret="whsec_x", api_base=recorder.url, retry_delays=()
    )


def test_the_settings_choose_the_emulator_only_when_an_api_base_is_set(settings):
    settings.STRIPE_API_BASE = None
    assert type(gateway_from_settings()) is StripeGateway
    settings.STRIPE_API_BASE = "http://127.0.0.1:8420"
    assert type(gateway_from_settings()) is EmulatorGateway


def test_create_leaves_out_what_localstripe_rejects(recorder, emulator):
    emulator.create_payment_intent(
        amount=Money(2500, "USD"), order_number="SK-1", capture_method="manual", idempotency_key="k"
    )
    assert "automatic_payment_methods[enabled]" not in recorder.only().form
    assert recorder.only().stripe_version == STRIPE_API_VERSION


def test_confirm_sets_the_method_first_then_confirms_without_it(recorder, emulator):
    recorder.answer(
        "POST", "/v1/payment_intents/pi_1/confirm", localstripe_intent("requires_capture")
    )
    recorder.answer("GET", "/v1/payment_methods/pm_1", {"id": "pm_1", "card": {"brand": "visa"}})

    snapshot = emulator.confirm_payment_intent("pi_1", payment_method="pm_x", idempotency_key="k")

    update, confirm, method = recorder.requests
    assert (update.path, update.form, update.idempotency_key) == (
        "/v1/payment_intents/pi_1",
        {"payment_method": "pm_x"},
        "k-method",
    )
    assert (confirm.path, confirm.form, confirm.idempotency_key) == (
        "/v1/payment_intents/pi_1/confirm",
        {},
        "k",
    )
    assert (method.method, method.path) == ("GET", "/v1/payment_methods/pm_1")
    assert snapshot.amount_capturable == 2500 and snapshot.card_brand == "visa"


def test_a_capture_fills_in_the_amount_received_localstripe_leaves_out(recorder, emulator):
    recorder.answer("POST", "/v1/payment_intents/pi_1/capture", localstripe_intent("succeeded"))

    snapshot = emulator.capture_payment_intent("pi_1", amount=None, idempotency_key="k")

    assert (snapshot.status, snapshot.amount_received) == (IntentStatus.SUCCEEDED, 1500)
    assert snapshot.charge_id == "ch_1"


def test_reads_use_no_expand_no_created_filter_and_charges_come_from_the_intent(recorder, emulator):
    recorder.answer("GET", "/v1/payment_intents/pi_1", localstripe_intent("succeeded"))

    (charge,) = emulator.list_charges("pi_1")
    list(emulator.list_payment_intents(created_gte=1))

    retrieve, listing = recorder.requests
    assert (retrieve.path, retrieve.form) == ("/v1/payment_intents/pi_1", {})
    assert (listing.path, listing.form) == ("/v1/payment_intents", {"limit": "100"})
    assert charge.amount_captured == 2500  # localstripe's captured charge took its amount
    assert emulator.list_disputes("pi_1") == [] and len(recorder.requests) == 2


def test_account_lists_filter_as_localstripe_allows_and_disputes_ask_nothing(recorder, emulator):
    """localstripe takes `created[gt]` on charges only; refunds are filtered here."""
    recorder.answer(
        "GET",
        "/v1/refunds",
        canned.page(
            "/v1/refunds", canned.refund("re_old", created=99), canned.refund("re_new", created=100)
        ),
    )

    list(emulator.list_account_charges(created_gte=100))
    ((refund,),) = emulator.list_account_refunds(created_gte=100)
    assert list(emulator.list_account_disputes(created_gte=100)) == []

    charges, refunds = recorder.requests
    assert (charges.path, charges.form) == ("/v1/charges", {"limit": "100", "created[gt]": "99"})
    assert (refunds.path, refunds.form) == ("/v1/refunds", {"limit": "100"})
    assert refund.id == "re_new"


def test_a_refund_keeps_our_reason_in_metadata_only(recorder, emulator):
    emulator.create_refund(
        intent_id="pi_1",
        amount=Money(500, "USD"),
        reason="duplicate",
        metadata={},
        idempotency_key="refund-1",
    )
    assert recorder.only().form == {
        "payment_intent": "pi_1",
        "amount": "500",
        "metadata[reason]": "duplicate",
    }


def test_no_runtime_module_imports_localstripe():
    """localstripe is in the demo extra: every module imports without it (the demo runner
    imports it only when it starts the emulator)."""
    code = (
        "import sys, importlib, pkgutil, django, os\n"
        "sys.modules['localstripe'] = None\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'shopkeeper.settings')\n"
        "django.setup()\n"
        "import shopkeeper\n"
        "for m in pkgutil.walk_packages(shopkeeper.__path__, 'shopkeeper.'):\n"
        "    importlib.import_module(m.name)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
