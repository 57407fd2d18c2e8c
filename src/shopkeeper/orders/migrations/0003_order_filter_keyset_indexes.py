"""One keyset index per filter of the orders list (status, payment status, both), replacing the
single-column ones that an ordered page never used, and the whole e-mail's index.

Built CONCURRENTLY: a shop with a million orders keeps taking them while this runs.
"""

import django.db.models.functions.text
from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0002_money_operations_and_attention"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                fields=["status", "-created_at", "-id"], name="order_status_keyset_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                fields=["payment_status", "-created_at", "-id"], name="order_payment_keyset_idx"
            ),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                fields=["status", "payment_status", "-created_at", "-id"],
                name="order_both_status_keyset_idx",
            ),
        ),
        AddIndexConcurrently(
            model_name="order",
            index=models.Index(
                django.db.models.functions.text.Lower("email"), name="order_email_lower_idx"
            ),
        ),
        RemoveIndexConcurrently(model_name="order", name="order_status_idx"),
        RemoveIndexConcurrently(model_name="order", name="order_payment_status_idx"),
        # Statistics of lower(email), so the planner knows a whole e-mail matches few rows.
        migrations.RunSQL("ANALYZE orders_order", migrations.RunSQL.noop),
    ]
