"""API authentication: bearer tokens for programs, cookie sessions (with CSRF) for people.

An endpoint guarded by `accounts.access.requires(permission)` and mounted on a `GuardedRouter`
is also checked here, while authenticating: the permission is refused (403, audited) before
django-ninja reads or validates the body, so a denied role never learns what a valid body is.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from ninja import Router
from ninja.constants import NOT_SET
from ninja.security import APIKeyCookie, HttpBearer

from shopkeeper.accounts.access import ensure_can
from shopkeeper.accounts.models import ApiToken, User, hash_token
from shopkeeper.accounts.permissions import Permission
from shopkeeper.errors import Forbidden
from shopkeeper.rows import columns, instance, width

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    title = "CSRF check failed"


def _permitted(request: HttpRequest, user: Any, permission: Permission | None) -> Any:
    if user is not None and permission is not None:
        ensure_can(request, permission)  # raises Forbidden, answered 403 by the API
    return user


class BearerTokenAuth(HttpBearer):
    def __init__(self, permission: Permission | None = None) -> None:
        self.permission = permission
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return _permitted(request, self._token_owner(request, token), self.permission)

    def _token_owner(self, request: HttpRequest, token: str) -> Any:
        with connection.cursor() as cursor:
            cursor.execute(_token_lookup(), [hash_token(token)])
            row = cursor.fetchone()
        if row is None:
            return None
        api_token = instance(ApiToken, row[: width(ApiToken)])
        api_token.user = instance(User, row[width(ApiToken) :])
        touch_token(api_token)
        request.user = api_token.user
        return api_token.user


@cache
def _token_lookup() -> str:
    """A token that is not revoked, of a user still active: by its hash (unique), with its user,
    in one statement written by hand (shopkeeper.rows), as every API request makes it."""
    return (
        f"SELECT {columns(ApiToken, 't')}, {columns(User, 'u')}"
        f" FROM {ApiToken._meta.db_table} t JOIN {User._meta.db_table} u ON u.id = t.user_id"
        " WHERE t.key_hash = %s AND t.revoked_at IS NULL AND u.is_active"
    )


def touch_token(api_token: ApiToken) -> None:
    """Note when a token was last used, at most every SHOPKEEPER_TOKEN_TOUCH_SECONDS: a write on
    every request of every client would cost a commit each time for a date shown to the minute.
    One UPDATE whose condition repeats the check, so two requests at once write it once."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.SHOPKEEPER_TOKEN_TOUCH_SECONDS)
    if api_token.last_used_at is not None and api_token.last_used_at > stale:
        return
    ApiToken.objects.filter(pk=api_token.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale)
    ).update(last_used_at=now)
    api_token.last_used_at = now


class SessionCookieAuth(APIKeyCookie):
    """The browser's Django session. A state-changing request must carry a valid CSRF token."""

    param_name = "sessionid"

    def __init__(self, permission: Permission | None = None) -> None:
        self.permission = permission
        super().__init__(csrf=False)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method in UNSAFE_METHODS:
            _check_csrf(request)
        return _permitted(request, user, self.permission)


def _not_a_view(request: HttpRequest) -> HttpResponse:
    """Stands in for the view: Django's CSRF check only reads the request."""
    raise AssertionError("never called")


def _check_csrf(request: HttpRequest) -> None:
    """Django's own CSRF check (cookie + X-CSRFToken header, and Origin/Referer on HTTPS)."""
    middleware = CsrfViewMiddleware(_not_a_view)
    middleware.process_request(request)
    rejection = middleware.process_view(request, _not_a_view, (), {})
    if rejection is not None:
        raise CsrfFailed("This request needs a valid CSRF token (X-CSRFToken header)")


api_auth = [BearerTokenAuth(), SessionCookieAuth()]


def auth_requiring(permission: Permission) -> list[Any]:
    """`api_auth` that also refuses a user whose role lacks `permission`."""
    return [BearerTokenAuth(permission), SessionCookieAuth(permission)]


class GuardedRouter(Router):
    """A router whose `requires(permission)` endpoints check the permission while authenticating,
    before their parameters and body are validated (422 would otherwise come before 403)."""

    def add_api_operation(
        self, path: str, methods: list[str], view_func: Any, **options: Any
    ) -> None:
        permission = getattr(view_func, "required_permission", None)
        if permission is not None and options.get("auth", NOT_SET) is NOT_SET:
            options["auth"] = auth_requiring(permission)
        super().add_api_operation(path, methods, view_func, **options)
