"""The SQL shapes the orders list needs, each written so that an index answers it.

- `before(created_at, pk)`: the keyset cursor as one row comparison, `(created_at, id) < (x, y)`,
  which PostgreSQL turns into a single index condition on `(created_at, id)` (the OR spelled
  out, `created_at < x OR (created_at = x AND id < y)`, is only a filter on the rows read).
- `matching(term)`: the search. The whole order number and the whole e-mail are equalities on
  b-tree indexes; part of the number, of the e-mail or of the customer's name are LIKE patterns
  that pg_trgm's GIN indexes answer (orders/migrations/0004). Without pg_trgm the same query is
  correct but reads the table (docs/development.md).
"""

from __future__ import annotations

from datetime import datetime

from django.db import models
from django.db.models import F, Func, Q, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Lower
from django.db.models.lookups import Contains, Exact, LessThan


class Row(Func):
    """`(a, b, ...)`: a row constructor, for comparing several columns at once."""

    function = ""
    template = "(%(expressions)s)"
    output_field = models.Field()


def before(created_at: datetime, pk: int) -> LessThan:
    """Orders listed after (older than) the one at `(created_at, pk)` in newest-first order."""
    here = Row(
        Value(created_at, output_field=models.DateTimeField()),
        Value(pk, output_field=models.BigIntegerField()),
    )
    return LessThan(Row(F("created_at"), F("id")), here)


def customer_name() -> Lower:
    return Lower(KeyTextTransform("name", "shipping_address"))


def matching(term: str) -> Q:
    """Orders whose number or e-mail is `term`, or whose number, e-mail or customer name
    contains it, ignoring case."""
    lowered = term.lower()
    return (
        Q(number=term.upper())
        | Q(Exact(Lower("email"), lowered))
        | Q(number__contains=term.upper())
        | Q(Contains(Lower("email"), lowered))
        | Q(Contains(customer_name(), lowered))
    )
