from django.apps import AppConfig


class RefundsConfig(AppConfig):
    name = "shopkeeper.refunds"
    label = "refunds"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shopkeeper.refunds.limits import check_configured_limits

        check_configured_limits()
