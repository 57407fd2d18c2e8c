from django.apps import AppConfig


class FulfilmentConfig(AppConfig):
    name = "shopkeeper.fulfilment"
    label = "fulfilment"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from shopkeeper.fulfilment.closing import close_after_money_moved, close_after_refund
        from shopkeeper.orders.settling import on_money_moved
        from shopkeeper.refunds.settled import on_refund_settled

        on_money_moved(close_after_money_moved)
        on_refund_settled(close_after_refund)
