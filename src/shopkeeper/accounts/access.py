"""The one gate for admin actions: `requires(permission)` on every view and API endpoint."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.http import HttpRequest

from shopkeeper.accounts.actors import Actor
from shopkeeper.accounts.permissions import Permission, can
from shopkeeper.errors import Forbidden

P = ParamSpec("P")
R = TypeVar("R")


def acting_user(request: HttpRequest) -> Actor | None:
    """The user behind a request: the bearer token's owner, else the session's user."""
    user = getattr(request, "auth", None) or getattr(request, "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def acting_staff(request: HttpRequest) -> Actor:
    """The member of staff behind a request that `requires` already let through."""
    user = acting_user(request)
    if user is None:
        raise Forbidden("Sign in first")
    return user


def ensure_can(request: HttpRequest, permission: Permission) -> Actor:
    """Return the acting user, or raise Forbidden (recording the refusal in the audit log)."""
    user = acting_user(request)
    if user is not None and can(user, permission):
        return user
    from shopkeeper.audit.services import record

    record(
        action="permission.denied",
        target_type="permission",
        target_id=str(permission),
        actor=user,
        actor_label="" if user else "anonymous",
        details={"path": request.path, "method": request.method},
    )
    raise Forbidden(f"Your role does not allow {permission}", permission=str(permission))


def requires(permission: Permission) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Guard a view or API endpoint: `ensure_can(request, permission)` before it runs.

    The guarded function keeps the view's signature with its annotations resolved in the
    view's own module, so django-ninja reads the right types even under postponed annotations;
    `required_permission` on it lets tests check that every endpoint is guarded.
    """

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            request = args[0]
            assert isinstance(request, HttpRequest)
            ensure_can(request, permission)
            return view(*args, **kwargs)

        setattr(guarded, "__signature__", inspect.signature(view, eval_str=True))  # noqa: B010
        setattr(guarded, "required_permission", permission)  # noqa: B010
        return guarded

    return decorate
