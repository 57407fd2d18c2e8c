from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: serving, demo data and the offline Stripe for development."""

    name = "shopkeeper.ops"
    label = "ops"
