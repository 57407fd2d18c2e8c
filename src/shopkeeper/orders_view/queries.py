"""The SQL shapes the orders list needs, each written so that an index answers it.

- `before(created_at, pk)`: the keyset cursor as one row comparison, `(created_at, id) < (x, y)`,
  which PostgreSQL turns into a single index condition on `(created_at, id)` (the OR spelled
  out, `created_at < x OR (created_at = x AND id < y)`, is only a filter on the rows read).
- `exactly(term)`, then `containing_read(term)`, then `containing(term)`: the search. A term
  that is an order's number or a customer's whole e-mail finds exactly those orders, from
  b-tree indexes, in a look-up. Any other term (at least MIN_PART characters) finds the orders
  whose number, e-mail or customer name contains it, in two steps (selectors._searched_page):
  1. the list's newest `window(page)` orders (80 per row of the page; `newest`: one statement,
     the window's edge a subquery), read in list order and tested with `strpos`, which no
     index answers, so the planner cannot swap the bounded read for trigram bitmaps of every
     match in the table. A term in more than about one order of
     80 there ("gmail", a common surname) fills the page from them: the page is complete.
  2. else the term is rare among them: the trigram GIN indexes (orders/migrations/0004) are
     asked for it word by word (`index_pieces`: a pattern across words makes pg_trgm add
     trigrams padded at the words' edges, which most rows contain) and the whole term is
     checked on the rows they return. Without pg_trgm the same query is correct but reads the
     table (docs/development.md).
- `few(candidates)`: the planner cannot know how many orders a search term selects. Guessing
  few when they are many, it sorts them all; guessing many when they are few,
  it reads the list in order and drops nearly every row. So the ids are fetched first, without
  order and at most `FEW + 1` of them (quick either way: a rare term's index, or the first
  matches of a common one): when they are few the page is those ids sorted, else the filter
  itself over the list read in order, where matches are then dense.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.db import models
from django.db.models import F, Func, Q, QuerySet, Subquery, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Lower, StrIndex
from django.db.models.lookups import Contains, Exact, GreaterThan, GreaterThanOrEqual, LessThan

FEW = 500
# Parts shorter than this are not searched for: a trigram index has nothing to look up for
# them (it would read all of itself), and two letters are in most orders anyway.
MIN_PART = 3
# How many of the list's newest orders are read for a page of search results before the
# search asks its indexes: a page of n is found there for any term in more than about one of
# WINDOW_PER_ROW orders.
WINDOW_PER_ROW = 80


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # before any order: the window of a short list


def window(size: int) -> int:
    """How many of the list's newest orders may hold a page of `size` search results."""
    return WINDOW_PER_ROW * size


def few(candidates: QuerySet[Any, int]) -> list[int] | None:
    """The ids `candidates` selects when there are at most FEW of them, else None."""
    ids = list(candidates.order_by()[: FEW + 1])
    return ids if len(ids) <= FEW else None


class Row(Func):
    """`(a, b, ...)`: a row constructor, for comparing several columns at once."""

    function = ""
    template = "(%(expressions)s)"
    output_field = models.Field()


def before(created_at: datetime, pk: int) -> LessThan:
    """Orders listed after (older than) the one at `(created_at, pk)` in newest-first order."""
    return LessThan(Row(F("created_at"), F("id")), _row(created_at, pk))


def newest(orders: QuerySet[Any], size: int) -> GreaterThanOrEqual:
    """Among the first `window(size)` orders of the list `orders` (or a few more, at the same
    instant as the last of them; all of them if the list is shorter): a prefix of the list, so
    the first `size` matches found there are the list's first `size` matches."""
    at = window(size)
    edge = Subquery(orders.values("created_at")[at - 1 : at])
    return GreaterThanOrEqual(F("created_at"), Coalesce(edge, Value(EARLIEST)))


def _row(created_at: datetime, pk: int) -> Row:
    return Row(
        Value(created_at, output_field=models.DateTimeField()),
        Value(pk, output_field=models.BigIntegerField()),
    )


def customer_name() -> Lower:
    return Lower(KeyTextTransform("name", "shipping_address"))


def exactly(term: str) -> Q:
    """Orders whose number, or whose customer's e-mail, is `term` (ignoring case)."""
    return Q(number=term.upper()) | Q(Exact(Lower("email"), term.lower()))


def containing(term: str) -> Q:
    """Orders whose number, e-mail or customer name contains `term`, ignoring case: written
    for the trigram indexes to answer (`index_pieces`), each match checked whole."""
    lowered = term.lower()
    return (
        _contains(F("number"), term.upper())
        | _contains(Lower("email"), lowered)
        | _contains(customer_name(), lowered)
    )


def containing_read(term: str) -> Q:
    """The same orders as `containing`, in a form no index answers (`strpos`): for a scan of
    the list in order, which stops at a page of matches, so that the planner does not build
    the trigram indexes' bitmaps for every match in the table first."""
    lowered = term.lower()
    return (
        _found(F("number"), term.upper())
        | _found(Lower("email"), lowered)
        | _found(customer_name(), lowered)
    )


WORD = re.compile(r"[^\W_]{3,}")


def index_pieces(term: str) -> list[str]:
    """What the trigram index is asked for: each word of at least 3 letters or digits in
    `term` (pg_trgm's words), or the term itself when it has none.

    A pattern spanning words (`%grace leroy%`) gives pg_trgm trigrams padded at the words'
    edges ("  l", " le", "ce "), which most names contain: their long posting lists made a
    rare two-word name cost more than a common word. Asked word by word, the index reads only
    the words' inner trigrams; the whole term is then checked on the rows it finds.
    """
    return WORD.findall(term) or [term]


def _contains(expression: Any, value: str) -> Q:
    pieces = index_pieces(value)
    found = Q()
    for piece in pieces:
        found &= Q(Contains(expression, piece))
    return found if pieces == [value] else found & _found(expression, value)


def _found(expression: Any, value: str) -> Q:
    return Q(GreaterThan(StrIndex(expression, Value(value)), 0))
