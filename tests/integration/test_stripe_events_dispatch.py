"""One dispatch table: every feature's Stripe event handlers, each type handled by one feature."""

from __future__ import annotations

import pytest

from shopkeeper.disputes import events as disputes
from shopkeeper.payments import events as payments
from shopkeeper.refunds import events as refunds
from shopkeeper.stripe_events import dispatch


def test_given_the_features_tables_then_theone_table_holds_each_of_their_types():
    for feature in (payments, refunds, disputes):
        assert feature.HANDLERS.items() <= dispatch.HANDLERS.items()
        assert feature.READERS.items() <= dispatch.READERS.items()
    assert len(dispatch.HANDLERS) == sum(len(f.HANDLERS) for f in (payments, refunds, disputes))
    assert dispatch.READERS.keys() <= dispatch.HANDLERS.keys()


def test_given_two_features_claim_one_type_when_joined_then_refused():
    with pytest.raises(RuntimeError, match=r"refund\.created"):
        dispatch.one_table({"refund.created": print}, {"refund.created": repr})
