from django.apps import AppConfig


class JobsConfig(AppConfig):
    """The worker (`shopkeeper worker`) and the rule that jobs are deferred in a transaction."""

    name = "shopkeeper.jobs"
    label = "jobs"
