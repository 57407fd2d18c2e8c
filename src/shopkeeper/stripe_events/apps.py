from django.apps import AppConfig


class StripeEventsConfig(AppConfig):
    name = "shopkeeper.stripe_events"
    label = "stripe_events"
    default_auto_field = "django.db.models.BigAutoField"
