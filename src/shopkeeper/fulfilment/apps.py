from django.apps import AppConfig


class FulfilmentConfig(AppConfig):
    name = "shopkeeper.fulfilment"
    label = "fulfilment"
    default_auto_field = "django.db.models.BigAutoField"
