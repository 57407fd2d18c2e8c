"""Back-office pages of the kept reconcile runs: the list (newest first) and one run's report.

Read-only, for whoever may read orders (the findings are about orders): the viewer too.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse

from shopkeeper.accounts.permissions import Permission
from shopkeeper.accounts.staff_pages import staff_view
from shopkeeper.errors import InvalidInput
from shopkeeper.reconciliation import history

PAGE_SIZE = 50


@staff_view(Permission.ORDERS_VIEW)
def run_list(request: HttpRequest) -> HttpResponse:
    before = _run_id(request.GET.get("before"))
    runs, next_before = history.list_runs(limit=PAGE_SIZE, before=before)
    context = {"runs": runs, "next_before": next_before, "paged": before is not None}
    return render(request, "reconciliation/run_list.html", context)


@staff_view(Permission.ORDERS_VIEW)
def run_page(request: HttpRequest, run_id: int) -> HttpResponse:
    run = history.get_run(run_id)
    findings = [
        {**finding, "order_url": _order_url(finding.get("order"))}
        for finding in history.finding_rows(run)
    ]
    context = {"run": run, "findings": findings, "order_url": _order_url(run.order_number)}
    return render(request, "reconciliation/run_page.html", context)


def _order_url(number: object) -> str | None:
    """The order's back-office page; None for no number, or one no page can have."""
    if not number:
        return None
    try:
        return reverse("backoffice:order", args=[str(number)])
    except NoReverseMatch:
        return None


def _run_id(text: str | None) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput(f"`before` must be a run number, not {text[:40]!r}")
    return int(text)
