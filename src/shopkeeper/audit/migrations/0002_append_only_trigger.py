from django.db import migrations

from shopkeeper.audit.append_only import install

forward, backward = install("audit_auditentry")


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
