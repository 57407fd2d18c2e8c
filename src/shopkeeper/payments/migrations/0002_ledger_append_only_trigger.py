from django.db import migrations

from shopkeeper.audit.append_only import install

forward, backward = install("payments_ledgerentry")


class Migration(migrations.Migration):
    dependencies = [("payments", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
