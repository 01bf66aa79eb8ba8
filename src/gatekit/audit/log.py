"""The engine's side of the audit log: builds records and decides when to sign.

Records are appended by the store inside the same transaction as the state
change they describe (so a decision is never committed without its record).
Checkpoints are signed here, every ``checkpoint_every`` records or
``checkpoint_interval`` seconds, and on ``close()`` — never on every call.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any, Protocol

from gatekit._ids import new_id
from gatekit.audit._keys import Signer
from gatekit.audit._records import AuditEvent, ChainHead, Checkpoint, checkpoint_body

logger = logging.getLogger("gatekit.audit")


class CheckpointStore(Protocol):
    def audit_head(self, writer_id: str) -> ChainHead | None: ...
    def add_checkpoint(self, checkpoint: Checkpoint) -> bool: ...


def default_writer_id() -> str:
    """One chain per host by default; replicas on one host should set their own."""
    return socket.gethostname() or "local"


def iso(moment: datetime) -> str:
    """Fixed-width UTC timestamps, so they sort as text."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


class AuditLog:
    def __init__(
        self,
        store: CheckpointStore,
        *,
        writer_id: str | None = None,
        signer: Signer | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 60.0,
    ) -> None:
        self.store = store
        self.writer_id = writer_id or default_writer_id()
        self.signer = signer
        self._every = checkpoint_every
        self._interval = checkpoint_interval
        self._lock = threading.Lock()
        self._since_checkpoint = 0
        self._last_checkpoint = time.monotonic()
        self._timer: threading.Timer | None = None

    def event(
        self,
        kind: str,
        decision_id: str | None,
        data: dict[str, Any],
        at: datetime,
        *,
        record_id: str | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            writer_id=self.writer_id,
            record_id=record_id or new_id("rec"),
            kind=kind,
            at=iso(at),
            decision_id=decision_id,
            data=data,
        )

    def committed(self, records: int = 1) -> None:
        """Count committed records; sign a checkpoint when one is due.

        When one is not due yet, a timer makes sure a quiet process still signs
        its last records within ``checkpoint_interval``.
        """
        if self.signer is None:
            return
        with self._lock:
            self._since_checkpoint += records
            elapsed = time.monotonic() - self._last_checkpoint
            due = self._since_checkpoint >= self._every or elapsed >= self._interval
            if not due and self._timer is None:
                self._timer = threading.Timer(self._interval - elapsed, self._on_timer)
                self._timer.daemon = True
                self._timer.start()
        if due:
            self._checkpoint_quietly()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self._checkpoint_quietly()

    def _checkpoint_quietly(self) -> None:
        try:
            self.checkpoint()
        except Exception as exc:  # the records are committed; signing retries next time
            logger.warning("gatekit: audit checkpoint failed: %s", exc)

    def checkpoint(self) -> Checkpoint | None:
        """Sign the current head of this writer's chain (None if nothing new)."""
        if self.signer is None:
            return None
        with self._lock:
            self._since_checkpoint = 0
            self._last_checkpoint = time.monotonic()
        head = self.store.audit_head(self.writer_id)
        if head is None or head.seq == 0:
            return None
        at = iso(datetime.now(UTC))
        body = checkpoint_body(head.writer_id, head.seq, head.hash, at, self.signer.key_id)
        checkpoint = Checkpoint(
            writer_id=head.writer_id,
            seq=head.seq,
            hash=head.hash,
            at=at,
            key_id=self.signer.key_id,
            body=body.decode(),
            signature=self.signer.sign(body),
        )
        return checkpoint if self.store.add_checkpoint(checkpoint) else None

    def close(self) -> None:
        """Sign what was written since the last checkpoint (clean shutdown)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self.checkpoint()
