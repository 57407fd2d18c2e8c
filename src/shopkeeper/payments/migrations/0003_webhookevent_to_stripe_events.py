"""WebhookEvent now belongs to the stripe_events app (its 0001): state only, the table stays."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_ledger_append_only_trigger"),
        ("stripe_events", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="WebhookEvent")],
            database_operations=[],
        ),
    ]
