"""The role → permission table and the one pure `can()`."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from shopkeeper.accounts.permissions import (
    ROLE_PERMISSIONS,
    Permission,
    Role,
    can,
    permissions_of,
)

P = Permission
EXPECTED = {
    "owner": set(Permission),
    "manager": {
        P.ORDERS_VIEW,
        P.ORDERS_REFUND,
        P.ORDERS_CANCEL,
        P.ORDERS_CAPTURE,
        P.ORDERS_FULFIL,
        P.ORDERS_NOTE,
        P.RETURNS_MANAGE,
        P.REFUNDS_APPROVE,
        P.CATALOG_MANAGE,
    },
    "support": {
        P.ORDERS_VIEW,
        P.ORDERS_REFUND,
        P.ORDERS_CANCEL,
        P.ORDERS_FULFIL,
        P.ORDERS_NOTE,
        P.RETURNS_MANAGE,
    },
    "viewer": {P.ORDERS_VIEW},
}


@dataclass(frozen=True)
class Person:
    role: str
    is_active: bool = True


def test_every_role_has_exactly_the_documented_permissions():
    assert {str(role): set(perms) for role, perms in ROLE_PERMISSIONS.items()} == EXPECTED


def test_the_issue_names_every_permission():
    assert {str(p) for p in Permission} == {
        "orders.view",
        "orders.refund",
        "orders.cancel",
        "orders.capture",
        "orders.fulfil",
        "orders.note",
        "returns.manage",
        "refunds.approve",
        "catalog.manage",
    }


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_given_active_person_when_asked_then_can_follows_the_table(role, permission):
    assert can(Person(role), permission) == (permission in EXPECTED[role])
    assert can(Person(role), str(permission)) == (permission in EXPECTED[role])


def test_given_inactive_person_then_nothing_is_allowed():
    assert permissions_of(Person("owner", is_active=False)) == frozenset()
    assert not can(Person("owner", is_active=False), P.ORDERS_VIEW)


def test_given_no_actor_or_unknown_role_then_nothing_is_allowed():
    assert not can(None, P.ORDERS_VIEW)
    assert permissions_of(Person("superhero")) == frozenset()
    assert not can(Person(""), P.ORDERS_VIEW)


def test_given_unknown_permission_name_then_can_refuses_loudly():
    with pytest.raises(ValueError):
        can(Person("owner"), "orders.delete")
