from django.apps import AppConfig


class ServerConfig(AppConfig):
    """Serving: gunicorn with our event-loop worker (`shopkeeper serve`)."""

    name = "shopkeeper.server"
    label = "server"
