from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The offline demo: its data (`shopkeeper seed`), the embedded PostgreSQL and localstripe."""

    name = "shopkeeper.demo"
    label = "demo"
