"""The daily refund limit (what one person refunded in one currency within 24 hours) read from
one index range, instead of every refund that person ever asked for."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("refunds", "0003_refund_status_newest_index"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="refund",
            index=models.Index(
                fields=["requested_by", "currency", "created_at"],
                name="refund_requester_recent_idx",
            ),
        ),
    ]
