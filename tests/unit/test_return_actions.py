"""A return's buttons: offered only when the role allows them and the return's state would
accept them (returns.actions, pure)."""

from __future__ import annotations

import pytest

from shopkeeper.accounts.permissions import ROLE_PERMISSIONS, Role
from shopkeeper.returns.actions import return_actions

MANAGER = ROLE_PERMISSIONS[Role.MANAGER]


@pytest.mark.parametrize(
    ("status", "refund_status", "received", "expected"),
    [
        ("requested", None, 0, ["receive", "reject"]),
        ("received", None, 2, ["refund", "reject"]),
        ("received", None, 0, ["reject"]),  # nothing came back: nothing to refund
        ("received", "failed", 2, ["refund", "reject"]),  # a failed refund may be asked again
        ("received", "rejected", 2, ["refund", "reject"]),
        ("received", "awaiting_approval", 2, []),  # waits for a second person
        ("received", "pending", 2, []),
        ("refunded", "succeeded", 2, []),
        ("rejected", None, 0, []),
    ],
)
def test_given_a_return_state_then_the_actions_its_table_allows(
    status, refund_status, received, expected
):
    actions = return_actions(
        status, refund_status=refund_status, received_units=received, permissions=MANAGER
    )
    assert actions == expected


def test_given_a_viewer_then_nothing_is_offered():
    assert (
        return_actions(
            "requested",
            refund_status=None,
            received_units=0,
            permissions=ROLE_PERMISSIONS[Role.VIEWER],
        )
        == []
    )


def test_given_returns_rights_without_refund_rights_then_no_refund():
    permissions = {"returns.manage"}
    actions = return_actions(
        "received", refund_status=None, received_units=1, permissions=permissions
    )
    assert actions == ["reject"]
