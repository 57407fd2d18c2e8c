"""PostgreSQL triggers that make a table append-only. Used by migrations."""

from __future__ import annotations

from typing import Any


def trigger_sql(table: str) -> tuple[str, str]:
    function = f"{table}_append_only"
    create = f"""
        CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        DROP TRIGGER IF EXISTS {function} ON {table};
        CREATE TRIGGER {function} BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION {function}();
    """
    drop = f"DROP TRIGGER IF EXISTS {function} ON {table}; DROP FUNCTION IF EXISTS {function}();"
    return create, drop


def install(table: str) -> tuple[Any, Any]:
    """A (forward, backward) pair for migrations.RunPython."""
    create, drop = trigger_sql(table)

    def forward(apps: Any, schema_editor: Any) -> None:
        schema_editor.execute(create, params=None)

    def backward(apps: Any, schema_editor: Any) -> None:
        schema_editor.execute(drop, params=None)

    return forward, backward
