from django.urls import include, path

from shopkeeper.api import api
from shopkeeper.stripe_events.views import stripe_webhook

urlpatterns = [
    path("api/", api.urls),
    path("webhooks/stripe", stripe_webhook, name="stripe-webhook"),
    path("admin/", include("shopkeeper.backoffice.urls")),
    path("", include("shopkeeper.checkout.urls")),
]
