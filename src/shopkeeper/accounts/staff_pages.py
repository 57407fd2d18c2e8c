"""The gate of every back-office page: signed in, then `accounts.access.requires(permission)`.

A refusal or any other domain error becomes a readable page with the status that
`shopkeeper.problems` gives the same error in the API, so people and programs see one rule.
Here, below the features, so that every feature's pages (the back office's orders, the
reconcile runs) use the same gate (`backoffice.access` re-exports it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from shopkeeper.accounts.access import requires
from shopkeeper.accounts.permissions import Permission
from shopkeeper.errors import DomainError
from shopkeeper.problems import status_for

View = Callable[..., HttpResponse]


def staff_view(permission: Permission) -> Callable[[View], View]:
    """Send anonymous visitors to the login form; refuse signed-in users without `permission`."""

    def decorate(view: View) -> View:
        guarded = requires(permission)(view)

        @functools.wraps(guarded)  # keeps `required_permission`: tests find every guarded page
        def page(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            try:
                return guarded(request, *args, **kwargs)
            except DomainError as error:
                return problem_page(request, error)

        return page

    return decorate


def problem_page(request: HttpRequest, error: DomainError) -> HttpResponse:
    return render(
        request,
        "backoffice/problem.html",
        {"error": error, "title": error.title, "detail": error.detail},
        status=status_for(error),
    )
