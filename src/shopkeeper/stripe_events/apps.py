from django.apps import AppConfig


class StripeEventsConfig(AppConfig):
    name = "shopkeeper.stripe_events"
    label = "stripe_events"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shopkeeper.health import register_count, register_note
        from shopkeeper.stripe_events import sync_health

        register_note("webhooks_sync", sync_health.describe_last_sync)
        register_count(
            "webhooks_missed_total",
            "Stripe events no webhook brought, stored by the Events API listing (webhooks sync)",
            sync_health.events_stored_by_sync,
        )
        register_count(
            "webhooks_sync_last_stored",
            "Events the last finished Events API listing stored",
            sync_health.last_sync_stored,
        )
        register_count(
            "webhooks_sync_age_seconds",
            "Seconds since the last Events API listing finished (hourly: alert above 3 hours)",
            sync_health.seconds_since_last_sync,
        )
