"""The audit witness: what the database must still contain, kept outside it.

Hash chains and signed checkpoints catch any edit inside the log, but not a log
cut back to an earlier checkpoint, a writer deleted whole, or an older copy of
the database put back (which would let a used approval run again): each of
those leaves a smaller log that is consistent in itself. So whenever a
checkpoint is signed, it is also written to the witness file,
``<data_dir>/audit-witness.json`` (and to ``GATEKIT_AUDIT_WITNESS``, if set),
replaced atomically, mode 0600. Per writer it holds:

* the latest signed checkpoint (seq and hash of the chain head then, signed), and
* the sessions (processes) writing that chain now; a session is removed by the
  final checkpoint at its clean close. A writer with no session left closed
  cleanly, and its last checkpoint covers everything it wrote.

The engine refuses to start on a database behind its witness; ``verify`` reports
a chain that ends before the witness's checkpoint, differs from it, or is gone.

A witness on the same disk as the database only helps against a database
restored or edited alone. Against someone who controls the whole machine (and
so the signing key), keep a copy elsewhere: point ``GATEKIT_AUDIT_WITNESS`` at
storage on another system, or copy the file (or ``gatekit audit checkpoints
--export``) off the machine regularly, and verify with ``--witness <copy>``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from gatekit._exceptions import BackendError, ConfigurationError
from gatekit.audit._files import exclusive, read_json, write_private_json
from gatekit.audit._records import AuditRecord, ChainHead, Checkpoint

logger = logging.getLogger("gatekit.audit")

WITNESS_FILE = "audit-witness.json"
_FORMAT = "gatekit-audit-witness"


@dataclass(frozen=True, slots=True)
class Session:
    """A process writing a chain, from its start until its clean close."""

    pid: int
    host: str
    since: str

    def surely_ended(self) -> bool:
        """Only a process on this host can be seen to be gone; any other may be running."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:  # e.g. another user's process: it exists
            return False
        return False


@dataclass(frozen=True, slots=True)
class WriterWitness:
    """What the witness knows of one writer. ``sessions`` is None when unknown (an
    exported copy of the checkpoints says nothing about who was still writing)."""

    checkpoint: Checkpoint | None = None
    sessions: dict[str, Session] | None = field(default_factory=dict)

    @property
    def closed_cleanly(self) -> bool:
        return self.sessions is not None and not self.sessions

    @property
    def still_open(self) -> bool:
        return bool(self.sessions)


@dataclass(frozen=True, slots=True)
class WitnessState:
    """One witness file as read."""

    path: Path
    writers: dict[str, WriterWitness]


# -- the file ------------------------------------------------------------------------


def read_witness(path: Path) -> WitnessState:
    """The witness at ``path``; empty if there is none yet."""
    if not path.exists():
        return WitnessState(path, {})
    try:
        document = read_json(path)
        if document.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a gatekit audit witness")
        writers = {w: _writer_from_json(item) for w, item in document["writers"].items()}
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the audit witness {path}: {exc.strerror or exc}"
        ) from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"cannot read the audit witness {path}: {exc}; restore it from a copy, "
            "or move it away knowingly (a rollback of the database would then go unnoticed)"
        ) from None
    return WitnessState(path, writers)


def write_witness(state: WitnessState) -> None:
    write_private_json(
        state.path,
        {
            "format": _FORMAT,
            "version": 1,
            "writers": {w: _writer_to_json(entry) for w, entry in sorted(state.writers.items())},
        },
    )


def _writer_from_json(item: dict[str, Any]) -> WriterWitness:
    checkpoint = item.get("checkpoint")
    sessions = item.get("sessions")
    return WriterWitness(
        checkpoint=None if checkpoint is None else Checkpoint(**_without_type(checkpoint)),
        sessions=None
        if sessions is None
        else {sid: Session(**session) for sid, session in sessions.items()},
    )


def _without_type(item: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != "type"}


def _writer_to_json(entry: WriterWitness) -> dict[str, Any]:
    return {
        "checkpoint": None
        if entry.checkpoint is None
        else _without_type(entry.checkpoint.to_json()),
        "sessions": None
        if entry.sessions is None
        else {
            sid: {"pid": s.pid, "host": s.host, "since": s.since}
            for sid, s in sorted(entry.sessions.items())
        },
    }


def checkpoints_as_witness(path: Path, checkpoints: Iterable[Checkpoint]) -> WitnessState:
    """The latest of ``checkpoints`` per writer, as a witness that knows no sessions."""
    latest: dict[str, Checkpoint] = {}
    for checkpoint in checkpoints:
        known = latest.get(checkpoint.writer_id)
        if known is None or checkpoint.seq > known.seq:
            latest[checkpoint.writer_id] = checkpoint
    return WitnessState(
        path, {w: WriterWitness(checkpoint=cp, sessions=None) for w, cp in latest.items()}
    )


# -- what the audit log does with it -------------------------------------------------------


class WitnessedStore(Protocol):
    def audit_head(self, writer_id: str) -> ChainHead | None: ...
    def audit_heads(self) -> list[ChainHead]: ...
    def audit_checkpoints(self, writer_id: str | None = None) -> list[Checkpoint]: ...
    def audit_records(
        self, writer_id: str | None = None, after_seq: int = 0
    ) -> Iterator[AuditRecord]: ...


class Witness:
    """Keeps one or more witness files (the data dir's, and an optional copy
    elsewhere) up to date for the audit log of one process."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(dict.fromkeys(Path(p) for p in paths))

    @classmethod
    def in_data_dir(cls, data_dir: Path, *, also: Path | None = None) -> Witness:
        return cls([data_dir / WITNESS_FILE, *([also] if also is not None else [])])

    def check_database(self, store: WitnessedStore) -> None:
        """Refuse (BackendError) a database that lacks what a witness saw signed."""
        for path in self.paths:
            state = read_witness(path)
            if not path.exists() and store.audit_heads():
                logger.warning(
                    "gatekit: no audit witness at %s yet; starting one from the database "
                    "as it is now",
                    path,
                )
            for _, entry in sorted(state.writers.items()):
                if entry.checkpoint is None:
                    continue
                behind = database_behind(store, entry.checkpoint)
                if behind is not None:
                    raise BackendError(_rollback_message(store, path, *behind))

    def open_session(self, writer_id: str, session_id: str) -> None:
        session = Session(os.getpid(), socket.gethostname(), datetime.now(UTC).isoformat())

        def add(entry: WriterWitness) -> WriterWitness:
            return replace(entry, sessions={**(entry.sessions or {}), session_id: session})

        self._update(writer_id, add)

    def ended_sessions(self, writer_id: str) -> set[str]:
        """Sessions of ``writer_id`` whose process is gone (crashed): a checkpoint
        signed after this call covers everything they wrote."""
        ended: set[str] = set()
        for path in self.paths:
            entry = read_witness(path).writers.get(writer_id)
            sessions = entry.sessions if entry is not None and entry.sessions else {}
            ended.update(sid for sid, session in sessions.items() if session.surely_ended())
        return ended

    def record(
        self, writer_id: str, checkpoint: Checkpoint | None, *, ended: Iterable[str] = ()
    ) -> None:
        """Keep ``checkpoint`` (unless a later one is there) and close ``ended`` sessions."""
        closing = set(ended)

        def advance(entry: WriterWitness) -> WriterWitness:
            latest = entry.checkpoint
            if checkpoint is not None and (latest is None or checkpoint.seq >= latest.seq):
                latest = checkpoint
            sessions = {sid: s for sid, s in (entry.sessions or {}).items() if sid not in closing}
            return WriterWitness(checkpoint=latest, sessions=sessions)

        self._update(writer_id, advance)

    def _update(self, writer_id: str, change: Callable[[WriterWitness], WriterWitness]) -> None:
        """Apply ``change`` to every witness file; a failing one does not stop the others."""
        failure: Exception | None = None
        for path in self.paths:
            try:
                self._update_file(path, writer_id, change)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    @staticmethod
    def _update_file(
        path: Path, writer_id: str, change: Callable[[WriterWitness], WriterWitness]
    ) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with exclusive(path):
                state = read_witness(path)
                state.writers[writer_id] = change(state.writers.get(writer_id, WriterWitness()))
                write_witness(state)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the audit witness {path} (data_dir, audit_witness / "
                f"GATEKIT_AUDIT_WITNESS): {exc.strerror or exc}"
            ) from exc


def database_behind(store: WitnessedStore, checkpoint: Checkpoint) -> tuple[str, str] | None:
    """(how, detail) when the store's chain lacks or contradicts ``checkpoint``."""
    writer_id, seq = checkpoint.writer_id, checkpoint.seq
    head = store.audit_head(writer_id)
    if head is None or head.seq < seq:
        ends = "has no records" if head is None else f"ends at seq {head.seq}"
        return "is older than", (
            f"writer {writer_id!r} {ends}, but the witness holds its signed checkpoint at seq {seq}"
        )
    stored = stored_hash_at(store, writer_id, seq, head)
    if stored is not None and stored != checkpoint.hash:
        return "does not match", (
            f"writer {writer_id!r}'s record at seq {seq} differs from the witness's "
            "signed checkpoint there"
        )
    return None


def stored_hash_at(store: WitnessedStore, writer_id: str, seq: int, head: ChainHead) -> str | None:
    """The hash the store holds for ``seq``: its record's, else a checkpoint's there
    (retention keeps one as anchor); None when retention removed both."""
    if head.seq == seq:
        return head.hash
    record = next(iter(store.audit_records(writer_id, seq - 1)), None)
    if record is not None and record.seq == seq:
        return record.hash
    anchor = next((cp for cp in store.audit_checkpoints(writer_id) if cp.seq == seq), None)
    return None if anchor is None else anchor.hash


def _rollback_message(store: WitnessedStore, witness: Path, how: str, detail: str) -> str:
    database = getattr(store, "path", None) or "the database"
    return (
        f"{database} {how} its audit witness {witness}: {detail}. Starting on it could "
        "let used approvals run again and hide audit records, so gatekit refuses to. "
        "Restore the newest copy of the database; or, if this rollback is intended, "
        f"move {witness} away (keep it as a record of the rollback) and start again."
    )
