"""Roles and permissions as a table, and one pure `can()` that every view and endpoint uses."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class Role(StrEnum):
    OWNER = "owner"
    MANAGER = "manager"
    SUPPORT = "support"
    VIEWER = "viewer"


class Permission(StrEnum):
    ORDERS_VIEW = "orders.view"
    ORDERS_REFUND = "orders.refund"
    ORDERS_CANCEL = "orders.cancel"
    ORDERS_CAPTURE = "orders.capture"
    ORDERS_FULFIL = "orders.fulfil"
    ORDERS_NOTE = "orders.note"
    RETURNS_MANAGE = "returns.manage"
    REFUNDS_APPROVE = "refunds.approve"
    CATALOG_MANAGE = "catalog.manage"


_P = Permission
ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.MANAGER: frozenset(
        {
            _P.ORDERS_VIEW,
            _P.ORDERS_REFUND,
            _P.ORDERS_CANCEL,
            _P.ORDERS_CAPTURE,
            _P.ORDERS_FULFIL,
            _P.ORDERS_NOTE,
            _P.RETURNS_MANAGE,
            _P.REFUNDS_APPROVE,
            _P.CATALOG_MANAGE,
        }
    ),
    Role.SUPPORT: frozenset(
        {
            _P.ORDERS_VIEW,
            _P.ORDERS_REFUND,
            _P.ORDERS_CANCEL,
            _P.ORDERS_FULFIL,
            _P.ORDERS_NOTE,
            _P.RETURNS_MANAGE,
        }
    ),
    Role.VIEWER: frozenset({_P.ORDERS_VIEW}),
}


class RoleBearer(Protocol):
    """What `can()` reads of an actor (`accounts.actors.Actor` has it)."""

    @property
    def role(self) -> str: ...

    @property
    def is_active(self) -> bool: ...


def permissions_of(actor: RoleBearer | None) -> frozenset[Permission]:
    """Everything the actor's role allows; nothing for no actor, an inactive one or an odd role."""
    if actor is None or not getattr(actor, "is_active", False):
        return frozenset()
    try:
        role = Role(getattr(actor, "role", ""))
    except ValueError:
        return frozenset()
    return ROLE_PERMISSIONS[role]


def can(actor: RoleBearer | None, permission: Permission | str) -> bool:
    return Permission(permission) in permissions_of(actor)
