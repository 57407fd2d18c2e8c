"""Where `audit verify` got to, sealed with the key: the next run resumes from it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0003_keyed_chains"),
    ]

    operations = [
        migrations.CreateModel(
            name="AuditCheckpoint",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(default=1, primary_key=True, serialize=False),
                ),
                ("seq", models.BigIntegerField()),
                ("entries", models.BigIntegerField()),
                ("chains", models.BigIntegerField()),
                ("digest", models.CharField(max_length=64)),
                ("last_order_id", models.BigIntegerField()),
                ("verified_at", models.DateTimeField()),
                ("mac", models.CharField(max_length=64)),
            ],
        ),
    ]
