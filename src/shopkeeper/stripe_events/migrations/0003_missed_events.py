"""Missed webhooks found through the Events API: where a stored event came from (`source`, a
database default, so the rows stored before are `webhook`), and each listing's run
(`EventSync`)."""

import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stripe_events", "0002_store_then_process"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="source",
            field=models.CharField(
                choices=[("webhook", "Webhook"), ("events_api", "Events Api")],
                db_default="webhook",
                default="webhook",
                max_length=20,
            ),
        ),
        migrations.CreateModel(
            name="EventSync",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "trigger",
                    models.CharField(
                        choices=[("schedule", "Schedule"), ("command", "Command")], max_length=20
                    ),
                ),
                ("since", models.DateTimeField()),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("listed", models.PositiveIntegerField(default=0)),
                ("already_stored", models.PositiveIntegerField(default=0)),
                ("stored", models.PositiveIntegerField(default=0)),
                ("error", models.TextField(blank=True)),
            ],
            options={
                "ordering": ("-id",),
                "indexes": [
                    models.Index(
                        fields=["trigger", "-started_at"], name="eventsync_trigger_started"
                    )
                ],
            },
        ),
    ]
