"""API authentication: bearer tokens for programs, cookie sessions (with CSRF) for people."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from ninja.security import APIKeyCookie, HttpBearer

from shopkeeper.accounts.models import ApiToken, hash_token
from shopkeeper.errors import Forbidden

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    title = "CSRF check failed"


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        api_token = (
            ApiToken.objects.select_related("user")
            .filter(key_hash=hash_token(token), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if api_token is None:
            return None
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=timezone.now())
        request.user = api_token.user
        return api_token.user


class SessionCookieAuth(APIKeyCookie):
    """The browser's Django session. A state-changing request must carry a valid CSRF token."""

    param_name = "sessionid"

    def __init__(self) -> None:
        super().__init__(csrf=False)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.method in UNSAFE_METHODS:
            _check_csrf(request)
        return user


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
