"""The append-only audit log: who did what to which object, in one keyed chain per object.

On PostgreSQL a trigger refuses UPDATE and DELETE; on every database `shopkeeper audit verify`
recomputes every chain with `SHOPKEEPER_AUDIT_KEY` and reports an edited or deleted entry
(docs/audit.md).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class AuditEntry(models.Model):
    # Global order of appending (gaps allowed); what an anchor's cut is measured in.
    seq = models.BigIntegerField(unique=True)
    # "order:SK-…", "user:…": the object's own chain, and the entry's place in it (1, 2, …).
    chain = models.CharField(max_length=120)
    chain_seq = models.BigIntegerField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # Plain id plus an e-mail snapshot: the record outlives changes to the user.
    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_email = models.CharField(max_length=254, blank=True)
    action = models.CharField(max_length=80, db_index=True)
    target_type = models.CharField(max_length=40)
    target_id = models.CharField(max_length=64)
    target_label = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ("seq",)
        indexes = (models.Index(fields=("target_type", "target_id", "seq")),)
        constraints = (
            models.UniqueConstraint(fields=("chain", "chain_seq"), name="audit_entry_chain_seq"),
        )

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.target_type}:{self.target_id}"


class AuditChainHead(models.Model):
    """One row per chain, locked while that chain grows: writes to other objects never wait.

    `mac` seals (chain, chain_seq, hash) with the key, so the newest entries of a chain cannot
    be removed and the head set back without it.
    """

    chain = models.CharField(max_length=120, primary_key=True)
    chain_seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)
    mac = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"audit head {self.chain} #{self.chain_seq}"


class AuditCheckpoint(models.Model):
    """Where `audit verify` got to: the log up to `seq` held when it was verified at
    `verified_at` (the cut as an anchor would sign it, and the newest order then), so the
    next run checks only what came after. One row; `mac` seals it with the key, so a forged
    checkpoint (one that would skip entries) is refused."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField()
    entries = models.BigIntegerField()
    chains = models.BigIntegerField()
    digest = models.CharField(max_length=64)
    last_order_id = models.BigIntegerField()
    verified_at = models.DateTimeField()
    mac = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"audit checkpoint #{self.seq}"
