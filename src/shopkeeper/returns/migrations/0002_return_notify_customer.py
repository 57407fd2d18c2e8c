"""Return.notify_customer: whether its refund's success mails the customer."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("returns", "0001_returns")]

    operations = [
        migrations.AddField(
            model_name="return",
            name="notify_customer",
            field=models.BooleanField(db_default=True, default=True),
        ),
    ]
