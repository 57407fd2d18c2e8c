"""`Order.needs_attention`: whether the order has an open flag, set from the open flags here and
kept by orders.attention from now on; and the partial keyset index of the flagged orders, so
the list's "needs a person" pages no longer test every order for a flag.

Adding a column with a constant default rewrites no row (PostgreSQL 11+); the index is built
CONCURRENTLY.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

FLAG_OPEN_ORDERS = """
UPDATE orders_order SET needs_attention = true
WHERE id IN (SELECT order_id FROM orders_attention WHERE resolved_at IS NULL)
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0004_order_search_trigram_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="needs_attention",
            field=models.BooleanField(default=False),
        ),
        migrations.RunSQL(FLAG_OPEN_ORDERS, migrations.RunSQL.noop),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                condition=models.Q(("needs_attention", True)),
                fields=["-created_at", "-id"],
                name="order_attention_keyset_idx",
            ),
        ),
    ]
