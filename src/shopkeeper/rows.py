"""Model instances from a hand-written SELECT, for the few statements every request makes.

The ORM compiles a queryset into SQL on every call: a `select_for_update().filter(...).first()`
costs about 0.5-1 ms of CPU before PostgreSQL sees it, and one with `select_related`,
`Exists` and raw SQL annotations about 3 ms, which on the refund path added up to a third of the
request's CPU (bench/request_cpu.py). Statements written once, by hand, with the model's own
columns (`columns`) and read back as the ORM would (`instance`: the fields' database converters,
the same `Model.from_db`), cost none of that. A row read as JSON (`to_jsonb(t)`, many rows
of a kind in one statement) is read back by `instance_from_json`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import (
    DateField,
    DecimalField,
    DurationField,
    Field,
    Model,
    TimeField,
    UUIDField,
)

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


@cache
def columns(model: type[Model], alias: str) -> str:
    """The model's columns in field order, `alias."column", ...`: what `instance` reads."""
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


@cache
def _converters(model: type[Model]) -> tuple[tuple[int, tuple[Converter, ...], Any], ...]:
    """Per column that has any, the converters the ORM would apply to it (a JSONField's
    decoding, for one), as `SQLCompiler.get_converters` finds them."""
    found = []
    for index, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        chain = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
        if chain:
            found.append((index, tuple(chain), column))
    return tuple(found)


@cache
def _attnames(model: type[Model]) -> tuple[str, ...]:
    return tuple(field.attname for field in model._meta.concrete_fields)


def width(model: type[Model]) -> int:
    """How many values of a row `columns(model, ...)` selected."""
    return len(model._meta.concrete_fields)


def instance(model: type[M], values: Sequence[Any]) -> M:
    """The instance the ORM would build from the values `columns(model, ...)` selected."""
    row = list(values)
    for index, chain, column in _converters(model):
        for convert in chain:
            row[index] = convert(row[index], column, connection)
    return model.from_db(connection.alias, _attnames(model), row)


# Fields whose value JSON does not carry as it is: dates and times, UUIDs, decimals are strings
# there. (DateTimeField is a DateField.) Every other column's JSON value is its Python value.
_TEXT_IN_JSON = (DateField, TimeField, UUIDField, DecimalField, DurationField)


@cache
def _json_readers(model: type[Model]) -> tuple[tuple[str, Callable[[Any], Any] | None], ...]:
    def reader(field: Field[Any, Any]) -> Callable[[Any], Any] | None:
        return field.to_python if isinstance(field, _TEXT_IN_JSON) else None

    return tuple((str(field.column), reader(field)) for field in model._meta.concrete_fields)


def instance_from_json(model: type[M], row: dict[str, Any]) -> M:
    """The instance from its row as `to_jsonb` writes it (every column), values converted as
    the fields read them."""
    values = [
        row[column] if read is None or row[column] is None else read(row[column])
        for column, read in _json_readers(model)
    ]
    return model.from_db(connection.alias, _attnames(model), values)


def _update_sql(row: Model, fields: Sequence[str]) -> tuple[str, list[Any]]:
    meta = row._meta
    chosen = [meta.get_field(name) for name in fields]
    sets = ", ".join(f'"{field.column}" = %s' for field in chosen)  # type: ignore[union-attr]
    values = [
        field.get_db_prep_save(getattr(row, field.attname), connection)  # type: ignore[union-attr]
        for field in chosen
    ]
    return f'UPDATE {meta.db_table} SET {sets} WHERE "{meta.pk.column}" = %s', [*values, row.pk]


def update_together(
    first: tuple[Model, Sequence[str]], second: tuple[Model, Sequence[str]]
) -> None:
    """Two rows' UPDATEs of the named fields in one statement (a data-modifying WITH): what two
    `save(update_fields=...)` would write, for rows the caller has locked already."""
    first_sql, first_values = _update_sql(*first)
    second_sql, second_values = _update_sql(*second)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH first AS ({first_sql} RETURNING 1) {second_sql}",
            [*first_values, *second_values],
        )


def saved_fields(model: type[Model]) -> list[str]:
    """Every field `save()` writes (all concrete fields but the primary key)."""
    return [f.name for f in model._meta.concrete_fields if not f.primary_key]
