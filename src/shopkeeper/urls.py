from django.urls import include, path

from shopkeeper.api import api
from shopkeeper.monitoring.views import healthz, metrics, readyz
from shopkeeper.stripe_events.views import stripe_webhook

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("api/", api.urls),
    path("webhooks/stripe", stripe_webhook, name="stripe-webhook"),
    path("admin/reconcile/", include("shopkeeper.reconciliation.urls")),
    path("admin/", include("shopkeeper.backoffice.urls")),
    path("", include("shopkeeper.checkout.urls")),
]
