from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from shopkeeper.money import Money


class Product(models.Model):
    sku = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    price_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3)
    stock = models.IntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("name", "id")
        constraints = (
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(
                condition=Q(price_minor__gte=0), name="product_price_not_negative"
            ),
        )

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def price(self) -> Money:
        return Money(self.price_minor, self.currency)
