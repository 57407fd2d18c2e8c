"""Webhooks store, then process: an event is `received` until its job processed it, and counts
its failed tries (`attempts`). Events stored before keep their status."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("stripe_events", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="webhookevent",
            name="attempts",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AlterField(
            model_name="webhookevent",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("processed", "Processed"),
                    ("ignored", "Ignored"),
                    ("failed", "Failed"),
                ],
                max_length=20,
            ),
        ),
    ]
