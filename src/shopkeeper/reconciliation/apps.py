from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "shopkeeper.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation with Stripe"

    def ready(self) -> None:
        from shopkeeper.health import register_count, register_note
        from shopkeeper.reconciliation import health

        register_count(
            "reconcile_differences",
            "Differences the last whole-shop reconcile run left unfixed",
            health.differences_left,
        )
        register_count(
            "reconcile_age_seconds",
            "Seconds since the last nightly reconcile run that compared the books ended",
            health.age_of_last_nightly_run,
        )
        register_count(
            "reconcile_failed",
            "1 when the last nightly reconcile run failed",
            health.last_nightly_run_failed,
        )
        register_note("reconcile", health.last_run_line)
