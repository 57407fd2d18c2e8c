"""The pure comparison of our books with Stripe's: every kind of difference, each with the fix
that applies, localstripe's capture remainder recognised, and (Hypothesis) books kept the way
the services keep them always agree with Stripe, while any lost fact is found."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from shopkeeper.payments.gateway import (
    ChargeSnapshot,
    DisputeSnapshot,
    IntentSnapshot,
    RefundSnapshot,
)
from shopkeeper.progress import bar
from shopkeeper.reconciliation.compare import (
    capture_remainders,
    captured_at_stripe,
    compare_payment,
    proven_intent,
)
from shopkeeper.reconciliation.facts import (
    Fix,
    Kind,
    LedgerFacts,
    OurDispute,
    OurRefund,
    StripeFacts,
)
from shopkeeper.reconciliation.report import Report

PI = "pi_1"
KEY = "0b7f6f0e-6a3c-4a39-a8a4-4a1f3c1b2d11"


def intent(status: str = "succeeded", amount: int = 2600, **more: object) -> IntentSnapshot:
    defaults: dict[str, object] = {
        "amount_received": amount if status == "succeeded" else 0,
        "order_number": "SK-1",
    }
    if status == "requires_capture":
        defaults["amount_capturable"] = amount
    return IntentSnapshot(
        id=PI,
        status=status,
        amount=amount,
        currency="USD",
        capture_method="manual",
        charge_id="ch_1" if status in ("succeeded", "requires_capture") else "",
        **{**defaults, **more},  # type: ignore[arg-type]
    )


def charge(amount: int = 2600, captured: int | None = None, **more: object) -> ChargeSnapshot:
    return ChargeSnapshot(
        id="ch_1",
        status="succeeded",
        amount=amount,
        currency="USD",
        captured=more.pop("is_captured", True),  # type: ignore[arg-type]
        amount_captured=amount if captured is None else captured,
        payment_intent_id=PI,
    )


def refund(rid: str, amount: int, status: str = "succeeded", **more: object) -> RefundSnapshot:
    return RefundSnapshot(
        id=rid,
        status=status,
        amount=amount,
        currency="USD",
        payment_intent_id=str(more.pop("payment_intent_id", PI)),
        charge_id="ch_1",
        metadata=more.pop("metadata", {}),  # type: ignore[arg-type]
        created=int(more.pop("created", 100)),  # type: ignore[call-overload]
    )


def paid(**more: object) -> LedgerFacts:
    """Our books for a PaymentIntent of 26.00 captured in full."""
    base: dict[str, object] = {
        "intent_id": PI,
        "order_number": "SK-1",
        "intent_status": "succeeded",
        "currency": "USD",
        "authorization": 2600,
        "capture": 2600,
    }
    return LedgerFacts(**{**base, **more})  # type: ignore[arg-type]


def at_stripe(*refunds: RefundSnapshot, **more: object) -> StripeFacts:
    return StripeFacts(
        intent=more.pop("intent", intent()),  # type: ignore[arg-type]
        charges=more.pop("charges", (charge(),)),  # type: ignore[arg-type]
        refunds=refunds,
        disputes=more.pop("disputes", ()),  # type: ignore[arg-type]
    )


def found(ours: LedgerFacts | None, stripe: StripeFacts | None) -> list[tuple[str, str, str]]:
    return [(d.kind, d.subject, d.fix) for d in compare_payment(ours, stripe)]


def row(rid: int, status: str, amount: int, stripe_id: str = "", **more: object) -> OurRefund:
    return OurRefund(
        id=rid,
        key=str(more.get("key", KEY)),
        status=status,
        amount=amount,
        stripe_refund_id=stripe_id,
        in_flight=bool(more.get("in_flight", False)),
    )


# --- PaymentIntents and movements ---------------------------------------------------------


def test_given_books_equal_to_stripe_then_no_difference() -> None:
    ours = paid(refunds={"re_1": 500}, refund_rows=(row(1, "succeeded", 500, "re_1"),))
    stripe = at_stripe(refund("re_1", 500, metadata={"refund_key": KEY}))
    assert found(ours, stripe) == []


def test_given_neither_side_knows_it_then_nothing() -> None:
    assert found(None, None) == []


def test_given_our_payment_unknown_at_stripe_then_missing_at_stripe_for_a_person() -> None:
    assert found(paid(), None) == [(Kind.PAYMENT_MISSING_AT_STRIPE, "", Fix.NONE)]


def test_given_unknown_payment_intent_holding_money_for_our_order_then_reported() -> None:
    assert found(None, at_stripe()) == [(Kind.PAYMENT_MISSING_HERE, "", Fix.NONE)]
    unpaid = at_stripe(intent=intent("requires_payment_method"))
    assert found(None, unpaid) == []
    foreign = at_stripe(intent=intent(order_number=""))
    assert found(None, foreign) == []


def test_given_flagged_payment_then_one_difference_and_nothing_automatic() -> None:
    ours = paid(flag_reason="amount 2600 does not match the order total 2500", capture=0)
    assert found(ours, at_stripe()) == [(Kind.PAYMENT_FLAGGED, "", Fix.NONE)]


def test_given_webhook_lost_then_status_and_movements_missing_fixed_by_apply_intent() -> None:
    ours = paid(intent_status="requires_payment_method", authorization=0, capture=0)
    assert found(ours, at_stripe()) == [
        (Kind.INTENT_STATUS, "", Fix.APPLY_INTENT),
        (Kind.MOVEMENT_MISSING, "authorization", Fix.APPLY_INTENT),
        (Kind.MOVEMENT_MISSING, "capture", Fix.APPLY_INTENT),
    ]


def test_given_our_final_status_differs_then_no_automatic_fix() -> None:
    ours = paid(intent_status="canceled", capture=0, void=2600)
    differences = found(ours, at_stripe())
    assert differences[0] == (Kind.INTENT_STATUS, "", Fix.NONE)


def test_given_capture_amount_differs_then_a_person_looks() -> None:
    assert found(paid(capture=2000, release=600), at_stripe()) == [
        (Kind.MOVEMENT_AMOUNT, "capture", Fix.NONE),
        (Kind.MOVEMENT_NOT_AT_STRIPE, "release", Fix.NONE),
    ]


def test_given_capture_in_our_books_but_stripe_only_authorised_then_not_at_stripe() -> None:
    ours = paid(intent_status="requires_capture")
    stripe = at_stripe(intent=intent("requires_capture"), charges=())
    assert found(ours, stripe) == [(Kind.MOVEMENT_NOT_AT_STRIPE, "capture", Fix.NONE)]


def test_given_authorisation_canceled_at_stripe_then_void_missing() -> None:
    ours = paid(intent_status="requires_capture", capture=0)
    uncaptured = charge(is_captured=False, captured=0)
    stripe = at_stripe(intent=intent("canceled"), charges=(uncaptured,))
    assert found(ours, stripe) == [
        (Kind.INTENT_STATUS, "", Fix.APPLY_INTENT),
        (Kind.MOVEMENT_MISSING, "void", Fix.APPLY_INTENT),
    ]
    assert found(replace(ours, intent_status="canceled", void=2600), stripe) == []


def test_given_canceled_before_payment_then_nothing_expected() -> None:
    ours = paid(intent_status="canceled", authorization=0, capture=0)
    assert found(ours, at_stripe(intent=intent("canceled"), charges=())) == []


# --- Partial capture: Stripe's amount_captured, localstripe's remainder refund ------------


def test_given_partial_capture_the_stripe_way_then_books_agree() -> None:
    ours = paid(capture=2000, release=600)
    stripe = at_stripe(intent=intent(amount_received=2000), charges=(charge(captured=2000),))
    assert found(ours, stripe) == []


def test_given_partial_capture_the_localstripe_way_then_its_remainder_is_not_a_refund() -> None:
    ours = paid(capture=2000, release=600)
    remainder = refund("re_rest", 600, payment_intent_id="", created=100)
    stripe = at_stripe(remainder, intent=intent(amount_received=2000))

    assert capture_remainders(ours, stripe) == {"re_rest"}
    assert captured_at_stripe(stripe, frozenset({"re_rest"})) == 2000
    assert found(ours, stripe) == []


def test_given_localstripe_remainder_and_a_dashboard_refund_then_only_the_refund_is_news() -> None:
    ours = paid(capture=2000, release=600)
    remainder = refund("re_rest", 600, payment_intent_id="", created=100)
    dashboard = refund("re_dash", 300, created=200)  # names the PaymentIntent, no metadata
    # localstripe's PaymentIntent reports the charge less every refund: 2600 - 900.
    stripe = at_stripe(remainder, dashboard, intent=intent(amount_received=1700))
    assert found(ours, stripe) == [(Kind.REFUND_MISSING_HERE, "re_dash", Fix.SETTLE_REFUND)]


def test_given_dashboard_refund_of_the_released_amount_then_still_a_refund() -> None:
    ours = paid(capture=2000, release=600)
    remainder = refund("re_rest", 600, payment_intent_id="", created=100)
    same_amount = refund("re_dash", 600, created=200)
    stripe = at_stripe(remainder, same_amount)
    assert found(ours, stripe) == [(Kind.REFUND_MISSING_HERE, "re_dash", Fix.SETTLE_REFUND)]


def test_given_capture_not_yet_recorded_then_the_proven_capture_excludes_the_remainder() -> None:
    ours = paid(intent_status="requires_capture", capture=0)
    remainder = refund("re_rest", 600, payment_intent_id="", created=100)
    dashboard = refund("re_dash", 300, created=200)
    stripe = at_stripe(remainder, dashboard, intent=intent(amount_received=1700))

    assert proven_intent(ours, stripe).amount_received == 2000
    assert (Kind.MOVEMENT_MISSING, "capture", Fix.APPLY_INTENT) in found(ours, stripe)


# --- Refunds --------------------------------------------------------------------------------


def test_given_refund_unknown_here_then_settled_from_stripe() -> None:
    stripe = at_stripe(refund("re_1", 700))
    assert found(paid(), stripe) == [(Kind.REFUND_MISSING_HERE, "re_1", Fix.SETTLE_REFUND)]


def test_given_failed_refund_unknown_here_then_nothing_moved_and_nothing_to_record() -> None:
    assert found(paid(), at_stripe(refund("re_1", 700, "failed"))) == []


def test_given_answer_lost_then_found_by_our_key_and_settled() -> None:
    ours = paid(refund_rows=(row(1, "pending", 700),))
    stripe = at_stripe(refund("re_1", 700, metadata={"refund_key": KEY}))
    assert found(ours, stripe) == [(Kind.REFUND_IN_DOUBT, "re_1", Fix.SETTLE_REFUND)]


def test_given_pending_refund_stripe_never_received_then_sent_again() -> None:
    ours = paid(refund_rows=(row(1, "pending", 700),))
    assert found(ours, at_stripe()) == [(Kind.REFUND_NOT_SENT, "refund 1", Fix.RESEND_REFUND)]


def test_given_pending_refund_still_in_flight_then_left_alone() -> None:
    ours = paid(refund_rows=(row(1, "pending", 700, in_flight=True),))
    assert found(ours, at_stripe()) == []


def test_given_stripe_settled_our_pending_refund_then_status_differs_and_settles() -> None:
    ours = paid(refund_rows=(row(1, "pending", 700, "re_1"),))
    for status in ("succeeded", "failed", "canceled"):
        stripe = at_stripe(refund("re_1", 700, status))
        assert found(ours, stripe) == [(Kind.REFUND_STATUS, "re_1", Fix.SETTLE_REFUND)]
    assert found(ours, at_stripe(refund("re_1", 700, "requires_action"))) == []


def test_given_refund_failed_after_succeeding_then_settling_records_the_reversal() -> None:
    ours = paid(refunds={"re_1": 700}, refund_rows=(row(1, "succeeded", 700, "re_1"),))
    stripe = at_stripe(refund("re_1", 700, "failed"))
    assert found(ours, stripe) == [(Kind.REFUND_STATUS, "re_1", Fix.SETTLE_REFUND)]


def test_given_our_refund_failed_but_stripe_refunded_then_a_person_looks() -> None:
    ours = paid(refund_rows=(row(1, "failed", 700, "re_1"),))
    assert found(ours, at_stripe(refund("re_1", 700))) == [(Kind.REFUND_STATUS, "re_1", Fix.NONE)]


def test_given_amounts_differ_then_refund_and_ledger_differences() -> None:
    ours = paid(refunds={"re_1": 700}, refund_rows=(row(1, "succeeded", 700, "re_1"),))
    assert found(ours, at_stripe(refund("re_1", 500))) == [
        (Kind.REFUND_AMOUNT, "re_1", Fix.NONE),
        (Kind.REFUND_LEDGER, "re_1", Fix.NONE),
    ]


def test_given_succeeded_refund_missing_from_the_ledger_then_reported() -> None:
    ours = paid(refund_rows=(row(1, "succeeded", 700, "re_1"),))
    assert found(ours, at_stripe(refund("re_1", 700))) == [(Kind.REFUND_LEDGER, "re_1", Fix.NONE)]


def test_given_refund_in_our_books_but_not_at_stripe_then_a_person_looks() -> None:
    ours = paid(refunds={"re_9": 700}, refund_rows=(row(1, "succeeded", 700, "re_9"),))
    assert found(ours, at_stripe()) == [(Kind.REFUND_MISSING_AT_STRIPE, "re_9", Fix.NONE)]
    ledger_only = paid(refunds={"re_8": 100})
    assert found(ledger_only, at_stripe()) == [(Kind.REFUND_MISSING_AT_STRIPE, "re_8", Fix.NONE)]


def test_given_second_stripe_refund_with_our_key_then_a_duplicate_for_a_person() -> None:
    ours = paid(refunds={"re_1": 700}, refund_rows=(row(1, "succeeded", 700, "re_1"),))
    stripe = at_stripe(
        refund("re_1", 700, metadata={"refund_key": KEY}),
        refund("re_2", 700, metadata={"refund_key": KEY}),
    )
    assert found(ours, stripe) == [(Kind.REFUND_MISSING_HERE, "re_2", Fix.NONE)]


def test_given_two_stripe_refunds_under_the_key_of_a_refund_in_doubt_then_the_first_is_ours() -> (
    None
):
    ours = paid(refund_rows=(row(1, "pending", 700),))
    stripe = at_stripe(
        refund("re_late", 700, metadata={"refund_key": KEY}, created=200),
        refund("re_first", 700, metadata={"refund_key": KEY}, created=100),
    )
    assert found(ours, stripe) == [
        (Kind.REFUND_IN_DOUBT, "re_first", Fix.SETTLE_REFUND),
        (Kind.REFUND_MISSING_HERE, "re_late", Fix.NONE),
    ]


# --- Disputes -------------------------------------------------------------------------------


def dispute(status: str = "needs_response", amount: int = 2600) -> DisputeSnapshot:
    return DisputeSnapshot(id="dp_1", status=status, amount=amount, currency="USD")


def test_given_dispute_unknown_here_then_recorded() -> None:
    stripe = at_stripe(disputes=(dispute(),))
    assert found(paid(), stripe) == [(Kind.DISPUTE_MISSING_HERE, "dp_1", Fix.APPLY_DISPUTE)]


def test_given_dispute_moved_on_at_stripe_then_applied_but_never_backwards() -> None:
    ours = paid(disputes=(OurDispute("dp_1", "needs_response", 2600, 0),))
    assert found(ours, at_stripe(disputes=(dispute("won"),))) == [
        (Kind.DISPUTE_STATUS, "dp_1", Fix.APPLY_DISPUTE)
    ]
    later = paid(disputes=(OurDispute("dp_1", "under_review", 2600, 0),))
    assert found(later, at_stripe(disputes=(dispute("needs_response"),))) == [
        (Kind.DISPUTE_STATUS, "dp_1", Fix.NONE)
    ]


def test_given_dispute_ledger_follows_its_outcome_then_books_agree() -> None:
    won = paid(disputes=(OurDispute("dp_1", "won", 2600, 2600),))
    assert found(won, at_stripe(disputes=(dispute("won"),))) == []
    lost = paid(disputes=(OurDispute("dp_1", "lost", 2600, 0),))
    assert found(lost, at_stripe(disputes=(dispute("lost"),))) == []
    not_released = paid(disputes=(OurDispute("dp_1", "won", 2600, 0),))
    assert found(not_released, at_stripe(disputes=(dispute("won"),))) == [
        (Kind.DISPUTE_AMOUNT, "dp_1", Fix.NONE)
    ]


def test_given_dispute_in_our_books_only_then_a_person_looks() -> None:
    ours = paid(disputes=(OurDispute("dp_1", "needs_response", 2600, 0),))
    assert found(ours, at_stripe()) == [(Kind.DISPUTE_MISSING_AT_STRIPE, "dp_1", Fix.NONE)]


# --- Properties: books kept as the services keep them agree; a lost fact is found ----------

refund_amounts = st.lists(
    st.tuples(st.integers(1, 5000), st.sampled_from(["succeeded", "pending", "failed"])),
    max_size=4,
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[LedgerFacts, StripeFacts]:
    """A payment captured in full or in part, refunded a few times, seen the Stripe way or the
    localstripe way, with our books as apply_intent and settle_refund would have kept them."""
    amount = draw(st.integers(100, 100_000))
    captured = draw(st.integers(1, amount))
    localstripe = draw(st.booleans())
    stripe_refunds, rows, ledger = [], [], {}
    if localstripe and captured < amount:
        stripe_refunds.append(refund("re_rest", amount - captured, payment_intent_id="", created=1))
    left = captured
    for number, (wanted, status) in enumerate(draw(refund_amounts), start=1):
        value = min(wanted, left)
        if value <= 0:
            break
        left -= value if status != "failed" else 0
        rid, key = f"re_{number}", f"key-{number}"
        stripe_refunds.append(refund(rid, value, status, metadata={"refund_key": key}, created=9))
        rows.append(OurRefund(number, key, status, value, rid))
        if status == "succeeded":
            ledger[rid] = value
    charges = (charge(amount, amount if localstripe else captured),)
    refunded = sum(r.amount for r in stripe_refunds)
    received = amount - refunded if localstripe else captured
    stripe = StripeFacts(
        intent(amount=amount, amount_received=received), charges, tuple(stripe_refunds)
    )
    ours = paid(
        authorization=amount,
        capture=captured,
        release=amount - captured,
        refunds=ledger,
        refund_rows=tuple(rows),
    )
    return ours, stripe


@given(histories())
def test_property_books_kept_by_the_services_agree_with_stripe(
    history: tuple[LedgerFacts, StripeFacts],
) -> None:
    ours, stripe = history
    assert compare_payment(ours, stripe) == []
    assert proven_intent(ours, stripe).amount_received == ours.capture


@given(histories(), st.data())
def test_property_a_refund_lost_from_our_books_is_found(
    history: tuple[LedgerFacts, StripeFacts], data: st.DataObject
) -> None:
    ours, stripe = history
    live = [r for r in ours.refund_rows if r.status != "failed"]
    if not live:
        return
    lost = data.draw(st.sampled_from(live))
    without = replace(
        ours,
        refund_rows=tuple(r for r in ours.refund_rows if r is not lost),
        refunds={k: v for k, v in ours.refunds.items() if k != lost.stripe_refund_id},
    )
    kinds = {(d.kind, d.stripe_id, d.fix) for d in compare_payment(without, stripe)}
    assert (Kind.REFUND_MISSING_HERE, lost.stripe_refund_id, Fix.SETTLE_REFUND) in kinds


@given(histories(), st.integers(1, 500))
def test_property_a_wrong_capture_is_found(
    history: tuple[LedgerFacts, StripeFacts], error: int
) -> None:
    ours, stripe = history
    wrong = replace(ours, capture=ours.capture + error)
    assert any(d.subject == "capture" for d in compare_payment(wrong, stripe))


# --- Report and progress bar ---------------------------------------------------------------


def test_given_differences_fixed_or_not_then_the_exit_code_says_what_remains() -> None:
    ours = paid(refund_rows=(row(1, "pending", 700),))
    stripe = at_stripe(refund("re_1", 700, metadata={"refund_key": KEY}))
    differences = compare_payment(ours, stripe)
    report = Report(fix=True, checked=1)

    report.found(differences)
    assert report.exit_code == 1 and report.as_json()["remaining"] == 1
    fixed = Report(fix=True, checked=1)
    fixed.found(differences, remaining=[])
    assert fixed.exit_code == 0 and fixed.as_json()["differences"][0]["fixed"] is True
    assert "1 fixed, 0 remaining" in fixed.as_text()
    unreachable = Report(unreachable=["pi_1: Stripe did not answer"])
    assert unreachable.exit_code == 2


def test_given_a_run_without_fix_then_the_report_tells_how_to_fix() -> None:
    report = Report(checked=1)
    report.found(compare_payment(paid(), at_stripe(refund("re_1", 700))))
    text = report.as_text()
    assert "A refund at Stripe is not in our books" in text and "--fix" in text


def test_progress_bar_fills_in_proportion() -> None:
    assert bar(0, 4, width=8) == "[        ] 0/4"
    assert bar(2, 4, width=8) == "[####    ] 2/4"
    assert bar(4, 4, width=8) == "[########] 4/4"
    assert bar(0, 0, width=4) == "[####] 0/0"


def test_docs_table_names_every_kind_of_difference() -> None:
    docs = Path(__file__).parents[2] / "docs" / "reconciliation.md"
    rows = {
        line.split("|")[1].strip(" `")
        for line in docs.read_text().splitlines()
        if line.startswith("| `")
    }
    assert {str(kind) for kind in Kind} <= rows
    assert {str(fix) for fix in Fix} <= set(docs.read_text().replace("`", " ").split())
