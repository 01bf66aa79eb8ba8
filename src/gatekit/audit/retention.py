"""Retention: drop old records while keeping every chain verifiable.

A chain is cut only at a signed checkpoint. The checkpoint is kept as the new
anchor: the first remaining record must link to its hash, so verification still
detects any edit, deletion or truncation of what remains.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from gatekit.audit._records import ChainHead, Checkpoint
from gatekit.audit.log import iso


class PrunableStore(Protocol):
    def audit_heads(self) -> list[ChainHead]: ...
    def audit_checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]: ...
    def prune_audit(self, writer_id: str, up_to_seq: int) -> int: ...


def prune(store: PrunableStore, before: datetime) -> int:
    """Delete records older than ``before`` up to the last checkpoint signed before it.

    Returns how many records were deleted.
    """
    cutoff = iso(before)
    deleted = 0
    writers = {head.writer_id for head in store.audit_heads()}
    for writer_id in sorted(writers):
        anchors = [cp for cp in store.audit_checkpoints(writer_id) if cp.at < cutoff]
        if anchors:
            deleted += store.prune_audit(writer_id, max(cp.seq for cp in anchors))
    return deleted
