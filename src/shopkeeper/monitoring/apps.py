from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    name = "shopkeeper.monitoring"
    label = "monitoring"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shopkeeper.health import register_check, register_count
        from shopkeeper.monitoring.checks import count_failed_webhooks, database_reachable
        from shopkeeper.orders_view.authorisations import count_expiring_authorisations

        register_check("database", database_reachable)
        register_count(
            "webhook_events_failed",
            "Stored Stripe events whose processing failed (shopkeeper webhooks replay --failed)",
            count_failed_webhooks,
        )
        register_count(
            "authorizations_expiring",
            "Orders whose authorisation is past SHOPKEEPER_AUTH_WARN_AFTER, not captured",
            count_expiring_authorisations,
        )
