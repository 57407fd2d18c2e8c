from django.apps import AppConfig


class ReturnsConfig(AppConfig):
    name = "shopkeeper.returns"
    label = "returns"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shopkeeper.fulfilment.selectors import tell_return_facts
        from shopkeeper.refunds.settled import on_refund_settled
        from shopkeeper.returns.selectors import facts_for_fulfilment
        from shopkeeper.returns.services import follow_refund

        on_refund_settled(follow_refund)
        tell_return_facts(facts_for_fulfilment)
