"""Trigram indexes for searching the orders list by part of the number, of the e-mail or of the
customer's name (orders_view.queries.matching), where PostgreSQL has pg_trgm.

pg_trgm is a contrib extension: PostgreSQL's own packages ship it, some embedded builds do not.
Without it this migration creates nothing and the search stays correct, but a search by part
of a word reads the whole table (docs/development.md says so). Running `migrate orders 0003`
then `migrate` again adds the indexes once the extension can be had.
"""

from django.db import migrations, transaction

# name -> what is indexed. The expressions are those the search's SQL compares, so the planner
# matches them.
TRIGRAM_INDEXES = {
    "order_number_trgm_idx": "number gin_trgm_ops",
    "order_email_trgm_idx": "(lower(email)) gin_trgm_ops",
    "order_name_trgm_idx": "(lower(shipping_address ->> 'name')) gin_trgm_ops",
}


def trigram_available(connection) -> bool:
    """pg_trgm is installed in this database, or installed now (when this role may)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return False
    try:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception:  # no privilege to create it: search falls back to reading the table
        return False
    return True


def add_trigram_indexes(connection, *, available: bool | None = None) -> list[str]:
    """Create the indexes (CONCURRENTLY outside a transaction); the names created."""
    if not (trigram_available(connection) if available is None else available):
        return []
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    with connection.cursor() as cursor:
        for name, indexed in TRIGRAM_INDEXES.items():
            cursor.execute(
                f"CREATE INDEX {concurrently}IF NOT EXISTS {name} "
                f"ON orders_order USING gin ({indexed})"
            )
        # Statistics of the indexed expressions: without them the planner takes any pattern
        # for a common one and reads the list in order instead of asking the index.
        cursor.execute("ANALYZE orders_order")
    return list(TRIGRAM_INDEXES)


def drop_trigram_indexes(connection) -> None:
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    with connection.cursor() as cursor:
        for name in TRIGRAM_INDEXES:
            cursor.execute(f"DROP INDEX {concurrently}IF EXISTS {name}")


def forwards(apps, schema_editor) -> None:
    add_trigram_indexes(schema_editor.connection)


def backwards(apps, schema_editor) -> None:
    drop_trigram_indexes(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("orders", "0003_order_filter_keyset_indexes"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
