from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The worker (`shopkeeper worker`) and the rule that jobs are deferred in a transaction."""

    name = "shopkeeper.jobs"
    label = "jobs"

    def ready(self) -> None:
        from shopkeeper.health import register_check, register_count
        from shopkeeper.jobs import health

        register_check("worker", health.worker_heartbeat)
        register_check("queue", health.queue_not_backed_up)
        register_count("queue_depth", "Jobs due and waiting for a worker", health.queue_depth)
        register_count("jobs_failed", "Jobs that failed for good", health.jobs_failed)
        register_count("jobs_running", "Jobs a worker is running now", health.jobs_running)
