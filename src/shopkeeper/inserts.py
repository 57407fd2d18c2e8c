"""One row inserted unless a unique constraint already holds its twin: one statement, no savepoint.

`Model.objects.create` inside `transaction.atomic()` costs a savepoint (three statements) to
survive an IntegrityError; `INSERT ... ON CONFLICT (...) DO NOTHING RETURNING id` tells the
same in one statement, whoever wrote the twin first (a concurrent writer included).
"""

from __future__ import annotations

from functools import cache

from django.db import connection, models


@cache
def insert_statement(model: type[models.Model], conflict: tuple[str, ...]) -> tuple[str, list]:
    """The INSERT ... ON CONFLICT DO NOTHING RETURNING id of `model` and its fields in order."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(str(f.column) for f in fields)})"
        f" VALUES ({', '.join(['%s'] * len(fields))})"
        f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING id"
    )
    return sql, fields


def insert_unless_conflict(row: models.Model, *conflict: str) -> bool:
    """Insert `row` (unsaved); True and `row.pk` set when it went in, False when a row with
    the same `conflict` columns exists already (nothing written)."""
    sql, fields = insert_statement(type(row), conflict)
    return run_insert(row, sql, insert_values(row, fields))


def insert_values(row: models.Model, fields: list) -> list:
    return [f.get_db_prep_save(f.pre_save(row, add=True), connection) for f in fields]


def run_insert(row: models.Model, sql: str, params: list) -> bool:
    """Run an INSERT (or a statement built on one) whose first column answered is the new
    row's id; True and `row.pk` set when a row went in."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    row.pk = inserted[0]
    row._state.adding = False
    return True
