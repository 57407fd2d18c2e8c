"""A claim names the key of the row its request creates, chosen with the claim (no later link).

Claims linked by id (`resource_id`, refunds only) get their refund's key first, so a key held by
a request that died before the upgrade still answers from its refund.
"""

import uuid

from django.db import migrations, models


def keys_from_linked_refunds(apps, schema_editor):
    record_model = apps.get_model("idempotency", "IdempotencyRecord")
    refund_model = apps.get_model("refunds", "Refund")
    linked = record_model.objects.filter(resource_id__isnull=False)
    for record in linked.iterator():
        key = refund_model.objects.filter(pk=record.resource_id).values_list("key", flat=True)
        record.resource_key = key.first() or uuid.uuid4()
        record.save(update_fields=["resource_key"])


def fresh_keys(apps, schema_editor):
    record_model = apps.get_model("idempotency", "IdempotencyRecord")
    for record in record_model.objects.filter(resource_id__isnull=True).iterator():
        record.resource_key = uuid.uuid4()
        record.save(update_fields=["resource_key"])


class Migration(migrations.Migration):
    dependencies = [
        ("idempotency", "0002_idempotency_lease"),
        ("refunds", "0002_refund_last_sent_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="idempotencyrecord",
            name="resource_key",
            field=models.UUIDField(null=True),
        ),
        migrations.RunPython(keys_from_linked_refunds, migrations.RunPython.noop),
        migrations.RunPython(fresh_keys, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="idempotencyrecord",
            name="resource_key",
            field=models.UUIDField(default=uuid.uuid4),
        ),
        migrations.RemoveField(model_name="idempotencyrecord", name="resource_id"),
    ]
