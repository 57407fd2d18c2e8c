"""The checkpoint `audit verify` resumes from: a sealed note of the cut it last verified.

It holds what the next run needs to go on from there: the cut's sequence number, how many
entries and chains lay at or below it and their digest (an anchor's `Cut`), and the newest
order then. Its HMAC (SHOPKEEPER_AUDIT_KEY) is checked before it is trusted: whoever edits the
row to skip entries, without the key, is refused (docs/audit.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict, dataclass
from datetime import datetime

from shopkeeper.audit.chain import Cut
from shopkeeper.audit.models import AuditCheckpoint
from shopkeeper.audit.services import audit_key


class CheckpointRefused(ValueError):
    code = "audit_checkpoint_refused"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    cut: Cut
    last_order_id: int  # the newest order when the cut was verified
    verified_at: datetime


def _seal(checkpoint: Checkpoint) -> str:
    body = {**asdict(checkpoint.cut), "last_order_id": checkpoint.last_order_id}
    body["verified_at"] = checkpoint.verified_at.isoformat()
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(audit_key(), f"checkpoint\x00{canonical}".encode(), hashlib.sha256).hexdigest()


def load_checkpoint() -> Checkpoint | None:
    """The last verified point; None before the first run. CheckpointRefused if its seal fails."""
    row = AuditCheckpoint.objects.filter(pk=1).first()
    if row is None:
        return None
    checkpoint = Checkpoint(
        Cut(row.seq, row.entries, row.chains, row.digest), row.last_order_id, row.verified_at
    )
    if not hmac.compare_digest(row.mac, _seal(checkpoint)):
        raise CheckpointRefused(
            "the checkpoint's seal is invalid (altered, or made with another key): "
            "run `shopkeeper audit verify --full`"
        )
    return checkpoint


def save_checkpoint(checkpoint: Checkpoint) -> None:
    cut = checkpoint.cut
    AuditCheckpoint.objects.update_or_create(
        pk=1,
        defaults={
            "seq": cut.seq,
            "entries": cut.entries,
            "chains": cut.chains,
            "digest": cut.digest,
            "last_order_id": checkpoint.last_order_id,
            "verified_at": checkpoint.verified_at,
            "mac": _seal(checkpoint),
        },
    )
