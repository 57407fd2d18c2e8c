"""Staff notes on an order: a line in its timeline, kept in the audit log (tamper-evident, with
who wrote it and when), never shown to the customer."""

from __future__ import annotations

from django.db import transaction

from shopkeeper.accounts.actors import Actor
from shopkeeper.audit.models import AuditEntry
from shopkeeper.audit.services import record_for_order
from shopkeeper.errors import InvalidInput
from shopkeeper.orders.lookups import get_order

MAX_NOTE_LENGTH = 2000


class NoteRequired(InvalidInput):
    code = "note_required"
    title = "A note needs some text"


@transaction.atomic
def add_note(*, order_number: str, text: str, actor: Actor) -> AuditEntry:
    text = (text or "").strip()
    if not text:
        raise NoteRequired()
    if len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(f"A note is limited to {MAX_NOTE_LENGTH} characters")
    order = get_order(order_number)
    return record_for_order(order, action="order.note", actor=actor, details={"text": text})
