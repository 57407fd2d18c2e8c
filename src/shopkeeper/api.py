"""The JSON API: routers of each feature, and the single error mapping to problem+json."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from shopkeeper.catalog.api import router as catalog_router
from shopkeeper.checkout.api import router as checkout_router
from shopkeeper.errors import DomainError
from shopkeeper.fulfilment.api import router as fulfilment_router
from shopkeeper.orders.api import router as orders_router
from shopkeeper.problems import problem, problem_for
from shopkeeper.reconciliation.api import router as reconcile_router
from shopkeeper.refunds.api import router as refunds_router
from shopkeeper.returns.api import router as returns_router

api = NinjaAPI(
    title="Shopkeeper API",
    version="1",
    urls_namespace="api",
    openapi_url="/openapi.json",
    docs_url="/docs",
)
api.add_router("/checkout", checkout_router)
api.add_router("/admin/products", catalog_router)
api.add_router("/admin/orders", orders_router)
# /admin/orders/{number}/refunds, /admin/refunds/{id}/approve|reject
api.add_router("/admin", refunds_router)
api.add_router("/admin/reconcile", reconcile_router)
# /admin/orders/{number}/shipments, /admin/orders/{number}/shipments/{id}/deliver
api.add_router("/admin", fulfilment_router)
# /admin/orders/{number}/returns, /admin/returns[/{id}[/receive|refund|reject]]
api.add_router("/admin", returns_router)


@api.exception_handler(DomainError)
def domain_error(request: HttpRequest, error: DomainError) -> HttpResponse:
    return problem_for(error)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, error: ValidationError) -> HttpResponse:
    return problem(
        422,
        "validation_error",
        "The request body or parameters are invalid",
        errors=[
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in error.errors
        ],
    )


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, error: AuthenticationError) -> HttpResponse:
    return problem(401, "not_authenticated", "Sign in or send a valid bearer token")


@api.exception_handler(HttpError)
def http_error(request: HttpRequest, error: HttpError) -> HttpResponse:
    code = "bad_request" if error.status_code == 400 else "http_error"
    return problem(error.status_code, code, str(error))
