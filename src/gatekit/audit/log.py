"""The engine's side of the audit log: builds records and decides when to sign.

Records are appended by the store inside the same transaction as the state
change they describe (so a decision is never committed without its record).
Checkpoints are signed here, every ``checkpoint_every`` records or
``checkpoint_interval`` seconds, and on ``close()`` — never on every call.

With a ``witness``, each checkpoint is also written outside the database, the
process's session is registered there at start and closed by the final
checkpoint, and a database behind the witness is refused at construction
(see ``gatekit.audit.witness``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from gatekit._canonical import canonical_json
from gatekit._ids import new_id
from gatekit.audit._keys import Signer
from gatekit.audit._records import (
    AuditEvent,
    Checkpoint,
    checkpoint_body,
)
from gatekit.audit.witness import Witness, WitnessedStore

logger = logging.getLogger("gatekit.audit")


class CheckpointStore(WitnessedStore, Protocol):
    def add_checkpoint(self, checkpoint: Checkpoint) -> bool: ...


def default_writer_id() -> str:
    """One chain per host by default; replicas on one host should set their own."""
    return socket.gethostname() or "local"


def iso(moment: datetime) -> str:
    """Fixed-width UTC timestamps, so they sort as text."""
    if moment.tzinfo is not UTC:  # the engine's clock gives UTC already
        moment = moment.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


class AuditLog:
    def __init__(
        self,
        store: CheckpointStore,
        *,
        writer_id: str | None = None,
        signer: Signer | None = None,
        checkpoint_every: int = 1000,
        checkpoint_interval: float = 60.0,
        witness: Witness | None = None,
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
        self.witness = witness
        self._session_id = uuid.uuid4().hex
        if witness is not None:
            witness.check_database(store)  # before anything is written on top of it
            self._open_session(witness)

    def _open_session(self, witness: Witness) -> None:
        try:
            witness.open_session(self.writer_id, self._session_id)
        except Exception:
            # One file may have taken it: a session that never ran must not look crashed.
            with contextlib.suppress(Exception):
                witness.record(self.writer_id, None, ended={self._session_id})
            raise

    def event(
        self,
        kind: str,
        decision_id: str | None,
        data: dict[str, Any] | bytes,
        at: datetime,
        *,
        record_id: str | None = None,
    ) -> AuditEvent:
        """An event of this writer. ``data`` is serialised here, before any store
        transaction, so that a writer holds the database lock for less."""
        return AuditEvent(
            writer_id=self.writer_id,
            record_id=record_id or new_id("rec"),
            kind=kind,
            at=iso(at),
            decision_id=decision_id,
            data=data if isinstance(data, bytes) else canonical_json(data),
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
        checkpoint, new = self._sign_and_witness(closing=False)
        return checkpoint if new else None

    def _sign_and_witness(self, *, closing: bool) -> tuple[Checkpoint | None, bool]:
        """Sign the head, store the checkpoint and hand it to the witness.

        Returns the checkpoint (also when another process had signed that position
        already: the witness still needs one covering the head) and whether it was new.
        """
        with self._lock:
            self._since_checkpoint = 0
            self._last_checkpoint = time.monotonic()
        # Sessions found dead before the head is read wrote nothing after it, so the
        # checkpoint covers them and the witness may count them as closed.
        ended = self.witness.ended_sessions(self.writer_id) if self.witness else set()
        if closing:
            ended.add(self._session_id)
        checkpoint, new = self._sign_head()
        if self.witness is not None and (checkpoint is not None or ended):
            self.witness.record(self.writer_id, checkpoint, ended=ended)
        return checkpoint, new

    def _sign_head(self) -> tuple[Checkpoint | None, bool]:
        if self.signer is None:
            return None, False
        head = self.store.audit_head(self.writer_id)
        if head is None or head.seq == 0:
            return None, False
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
        return checkpoint, self.store.add_checkpoint(checkpoint)

    def close(self) -> None:
        """Sign what was written since the last checkpoint, and tell the witness this
        session ended cleanly (its final checkpoint covers everything it wrote)."""
        with self._lock:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        self._sign_and_witness(closing=True)
