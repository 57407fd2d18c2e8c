"""Order.shipped_at: when the order's first shipment left; filled in from the shipments made."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0005_order_needs_attention"),
        ("fulfilment", "0001_shipments"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="shipped_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(
            """
            UPDATE orders_order o SET shipped_at = s.first
            FROM (SELECT order_id, min(shipped_at) AS first FROM fulfilment_shipment
                  GROUP BY order_id) s
            WHERE s.order_id = o.id
            """,
            migrations.RunSQL.noop,
        ),
    ]
