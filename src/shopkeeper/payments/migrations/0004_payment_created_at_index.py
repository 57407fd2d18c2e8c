"""An index on payments' `created_at`: `reconcile --since` reads a window, not the table.

Built CONCURRENTLY (no lock on writes while it builds on a large table), so not atomic.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("payments", "0003_webhookevent_to_stripe_events")]

    operations = [
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(fields=["created_at"], name="payment_created_at_idx"),
        ),
    ]
