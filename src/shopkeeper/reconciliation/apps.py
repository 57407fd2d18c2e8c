from django.apps import AppConfig


class ReconciliationConfig(AppConfig):
    name = "shopkeeper.reconciliation"
    label = "reconciliation"
    verbose_name = "Reconciliation with Stripe"
