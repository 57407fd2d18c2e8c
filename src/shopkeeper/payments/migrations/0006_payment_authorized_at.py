"""When each payment was authorised (`Payment.authorized_at`), and the open authorisations as a
small partial index: an uncaptured authorisation lapses counting from that time.

Backfilled from what exists: the time the authorisation's ledger row was recorded (the best
this database knows; new authorisations take Stripe's charge time when the snapshot has it).
The index is built CONCURRENTLY (writes go on while it builds), so the migration is not atomic.
"""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models

BACKFILL = """
    UPDATE payments_payment p SET authorized_at = e.created_at
    FROM payments_ledgerentry e
    WHERE e.payment_id = p.id AND e.kind = 'authorization' AND p.authorized_at IS NULL
"""


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("payments", "0005_stripe_rate_limit")]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="authorized_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
        AddIndexConcurrently(
            model_name="payment",
            index=models.Index(
                condition=models.Q(intent_status="requires_capture"),
                fields=["authorized_at"],
                name="payment_open_authorisation_idx",
            ),
        ),
    ]
