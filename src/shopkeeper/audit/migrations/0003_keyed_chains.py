"""One keyed chain per audited object instead of one unkeyed chain with one head row.

Existing entries are checked against the old unkeyed chain first (a broken log refuses to
migrate: it would be sealed as if it were sound), then re-sealed with SHOPKEEPER_AUDIT_KEY into
their objects' chains, in their old order (docs/audit.md: what the re-seal vouches for).
"""

import hashlib
import hmac
import json

from django.conf import settings
from django.db import migrations, models

GENESIS = "0" * 64
OLD_FIELDS = (
    "seq",
    "created_at",
    "actor_id",
    "actor_email",
    "action",
    "target_type",
    "target_id",
    "target_label",
    "before",
    "after",
    "details",
    "ip",
    "user_agent",
    "request_id",
)
NEW_FIELDS = ("chain", "chain_seq", *OLD_FIELDS)


def _canonical(row, names):
    content = {name: row.get(name) for name in names}
    content["created_at"] = row["created_at"].isoformat()
    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)


def _mac(key, *parts):
    return hmac.new(key, "\x00".join(parts).encode(), hashlib.sha256).hexdigest()


def _check_old_chain(rows, old_head):
    prev = GENESIS
    for row in rows:
        old = hashlib.sha256(f"{prev}|{_canonical(row, OLD_FIELDS)}".encode()).hexdigest()
        if row["prev_hash"] != prev or row["hash"] != old:
            raise RuntimeError(
                f"audit entry #{row['seq']} does not match the old hash chain: "
                "run `shopkeeper audit verify` on the previous release and investigate first"
            )
        prev = row["hash"]
    if old_head is not None and old_head != prev:
        raise RuntimeError("the old audit head does not match the last entry: investigate first")


def reseal(apps, schema_editor):
    entry_model = apps.get_model("audit", "AuditEntry")
    head_model = apps.get_model("audit", "AuditChainHead")
    db = schema_editor.connection
    table = entry_model._meta.db_table
    rows = list(entry_model.objects.order_by("seq").values())
    with db.cursor() as cursor:
        cursor.execute("SELECT hash FROM audit_auditchainhead_legacy WHERE id = 1")
        found = cursor.fetchone()
        old_head = found[0] if found else None
    _check_old_chain(rows, old_head)
    key = str(settings.SHOPKEEPER_AUDIT_KEY).encode()
    heads: dict[str, tuple[int, str]] = {}
    schema_editor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
    for row in rows:
        chain = f"{row['target_type']}:{row['target_id']}"
        seq_in_chain, prev = heads.get(chain, (0, GENESIS))
        row.update(chain=chain, chain_seq=seq_in_chain + 1)
        digest = _mac(key, "entry", prev, _canonical(row, NEW_FIELDS))
        entry_model.objects.filter(pk=row["id"]).update(
            chain=chain, chain_seq=seq_in_chain + 1, prev_hash=prev, hash=digest
        )
        heads[chain] = (seq_in_chain + 1, digest)
    schema_editor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")
    head_model.objects.bulk_create(
        head_model(
            chain=chain,
            chain_seq=n,
            hash=digest,
            mac=_mac(key, "head", chain, str(n), digest),
        )
        for chain, (n, digest) in heads.items()
    )


def create_sequence(apps, schema_editor):
    schema_editor.execute("CREATE SEQUENCE IF NOT EXISTS audit_entry_seq")
    schema_editor.execute(
        "SELECT setval('audit_entry_seq', "
        "COALESCE((SELECT MAX(seq) FROM audit_auditentry), 0) + 1, false)"
    )


def drop_sequence(apps, schema_editor):
    schema_editor.execute("DROP SEQUENCE IF EXISTS audit_entry_seq")


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [
        migrations.AlterModelTable(name="AuditChainHead", table="audit_auditchainhead_legacy"),
        migrations.RenameModel("AuditChainHead", "AuditChainHeadLegacy"),
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                ("chain", models.CharField(max_length=120, primary_key=True, serialize=False)),
                ("chain_seq", models.BigIntegerField(default=0)),
                ("hash", models.CharField(default=GENESIS, max_length=64)),
                ("mac", models.CharField(blank=True, max_length=64)),
            ],
        ),
        migrations.AddField(
            model_name="auditentry",
            name="chain",
            field=models.CharField(default="", max_length=120),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="auditentry",
            name="chain_seq",
            field=models.BigIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.RunPython(reseal, migrations.RunPython.noop),
        migrations.DeleteModel("AuditChainHeadLegacy"),
        migrations.AddConstraint(
            model_name="auditentry",
            constraint=models.UniqueConstraint(
                fields=("chain", "chain_seq"), name="audit_entry_chain_seq"
            ),
        ),
        migrations.RunPython(create_sequence, drop_sequence),
    ]
