"""Back-office pages: sign-in, the orders list, the order page with its live panel, and the
returns list.

Views only read; every change goes through the JSON API (called by the page's script), so the
rules, the audit and the idempotency live in one place.
"""

from __future__ import annotations

import hashlib

from django.contrib.auth.views import LoginView, LogoutView
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseNotModified
from django.shortcuts import redirect, render
from django.template.loader import render_to_string

from shopkeeper.accounts.forms import ThrottledAuthenticationForm
from shopkeeper.accounts.permissions import Permission
from shopkeeper.backoffice import panel
from shopkeeper.backoffice.access import staff_view
from shopkeeper.backoffice.returns_list import returns_list_context


class StaffLoginView(LoginView):
    """Django's login view with the throttled form (accounts.throttle)."""

    template_name = "backoffice/login.html"
    authentication_form = ThrottledAuthenticationForm
    redirect_authenticated_user = True


class StaffLogoutView(LogoutView):
    next_page = "/admin/login/"


def home(request: HttpRequest) -> HttpResponseBase:
    """Signed out: the login form right here. Signed in: the orders."""
    if request.user.is_authenticated:
        return redirect("backoffice:orders")
    return StaffLoginView.as_view()(request)


@staff_view(Permission.ORDERS_VIEW)
def order_list(request: HttpRequest) -> HttpResponse:
    return render(request, "backoffice/order_list.html", panel.order_list_context(request))


@staff_view(Permission.ORDERS_VIEW)
def return_list(request: HttpRequest) -> HttpResponse:
    """Returns by status, the requested ones (the queue) first."""
    return render(request, "backoffice/return_list.html", returns_list_context(request))


@staff_view(Permission.ORDERS_VIEW)
def order_page(request: HttpRequest, number: str) -> HttpResponse:
    context = panel.order_panel_context(number=number, user=request.user)
    return render(request, "backoffice/order_page.html", context)


@staff_view(Permission.ORDERS_VIEW)
def order_panel(request: HttpRequest, number: str) -> HttpResponse:
    """The order panel alone, for the page's script to swap in; 304 when nothing changed."""
    context = panel.order_panel_context(number=number, user=request.user)
    html = render_to_string("backoffice/_order_panel.html", context, request=request)
    etag = '"' + hashlib.sha256(html.encode()).hexdigest()[:32] + '"'
    if request.headers.get("If-None-Match") == etag:
        response: HttpResponse = HttpResponseNotModified()
    else:
        response = HttpResponse(html)
    response["ETag"] = etag
    response["Cache-Control"] = "no-cache, private"
    return response
