"""The approval queue (refunds of one status, newest first) read from one index range, instead
of a scan of `refund_order_status_idx` by its second column."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("refunds", "0002_refund_last_sent_at"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="refund",
            index=models.Index(fields=["status", "-id"], name="refund_status_newest_idx"),
        ),
    ]
