"""WebhookEvent moves here from the payments app: state only, the table and its rows stay.

The table keeps its name (`payments_webhookevent`, see the model's Meta), so nothing is done to
the database; `payments.0003` removes the model from the payments app's state.
"""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [("payments", "0002_ledger_append_only_trigger")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="WebhookEvent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("event_id", models.CharField(max_length=255, unique=True)),
                        ("type", models.CharField(max_length=100)),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("processed", "Processed"),
                                    ("ignored", "Ignored"),
                                    ("failed", "Failed"),
                                ],
                                max_length=20,
                            ),
                        ),
                        ("payload", models.JSONField()),
                        ("error", models.TextField(blank=True)),
                        (
                            "received_at",
                            models.DateTimeField(default=django.utils.timezone.now),
                        ),
                        ("processed_at", models.DateTimeField(blank=True, null=True)),
                    ],
                    options={"ordering": ("-id",), "db_table": "payments_webhookevent"},
                ),
            ],
            database_operations=[],
        ),
    ]
