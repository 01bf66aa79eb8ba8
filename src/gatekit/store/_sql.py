"""What the SQLite and PostgreSQL stores share: every query and the audit append.

Queries are written with ``?`` placeholders; a dialect rewrites them. Subclasses
provide a write transaction (exclusive for the rows it locks) and a read scope.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from gatekit._models import Action, Decision, Outcome, Status
from gatekit.api_keys import ApiKeyRecord, Role
from gatekit.audit._records import GENESIS, AuditEvent, AuditRecord, ChainHead, Checkpoint
from gatekit.delegation.records import KeyRecord, KeyStatus
from gatekit.policy.state import Charge
from gatekit.store._base import reuse_for_same_action
from gatekit.store._group_commit import GroupCommit

_DECISION_COLUMNS = (
    "decision_id, approval_id, idempotency_key, review_key, status, created_at, consumed_at,"
    " agent_id, decision, action"
)
_OPEN_REVIEW = (
    "SELECT decision FROM decisions WHERE review_key = ? AND consumed_at IS NULL"
    " AND status IN ('pending_review', 'approved') ORDER BY created_at DESC LIMIT 1"
)
_WINDOW_TOTAL = "SELECT COALESCE(SUM(amount), 0) FROM policy_events WHERE key = ? AND at > ?"
_RECORD_COLUMNS = "writer_id, seq, record_id, at, kind, decision_id, body, hash"
_CHECKPOINT_COLUMNS = "writer_id, seq, hash, at, key_id, body, signature"
_PAGE = 5000
_API_KEY_COLUMNS = "key_id, name, role, secret_hash, created_at, revoked_at"
_KEY_COLUMNS = (
    "key_id, identity, public_key, algorithm, status, is_root, not_before, not_after, revoked_at"
)


# writer_id, seq, record_id, at, kind, decision_id, body, hash: an audit_records row.
_RecordRow = tuple[str, int, str, str, str, str | None, str, str]
# Rows per INSERT: one statement (one step, one round trip) for a batch's records.
_ROWS_PER_INSERT = 50


@functools.cache
def _insert_decisions(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO decisions ({_DECISION_COLUMNS}) VALUES {values} ON CONFLICT DO NOTHING"


@functools.cache
def _insert_records(rows: int) -> str:
    values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?)"] * rows)
    return f"INSERT INTO audit_records ({_RECORD_COLUMNS}) VALUES {values}"


def _flat(rows: Iterable[Sequence[Any]]) -> tuple[Any, ...]:
    return tuple(itertools.chain.from_iterable(rows))


class _NotAllInserted(Exception):
    pass


@dataclass(slots=True)
class Write:
    """One caller's part of a write transaction: a decision row to insert (its
    ``audit`` record is written only if it is), and records written in any case
    (``also``: queued outcomes). After the commit: whether the decision was
    inserted, and the records written."""

    decision: tuple[Any, ...] | None = None
    idempotency_key: str | None = None
    audit: AuditEvent | None = None
    also: Sequence[AuditEvent] = ()
    inserted: bool = False
    records: list[_RecordRow] = field(default_factory=list)
    written: int = 0

    def events(self) -> list[AuditEvent]:
        events = [self.audit] if self.inserted and self.audit is not None else []
        events += self.also
        self.written = len(events)
        return events


def _iso(value: Any) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def _decision_row(decision: Decision, action: Action) -> tuple[Any, ...]:
    return (
        decision.decision_id,
        decision.approval_id,
        decision.idempotency_key,
        decision.review_key,
        decision.status.value,
        _iso(decision.created_at),
        _iso(decision.consumed_at),
        action.agent_id,
        decision.model_dump_json(),
        action.model_dump_json(),
    )


def _seal(
    events: Sequence[AuditEvent], seq: int, prev: str
) -> tuple[list[_RecordRow], tuple[int, str]]:
    """``events`` chained after ``(seq, prev)``: their rows, and the new head."""
    rows: list[_RecordRow] = []
    for event in events:
        seq += 1
        body, prev = event.sealed(seq, prev)
        rows.append(
            (
                event.writer_id,
                seq,
                event.record_id,
                event.at,
                event.kind,
                event.decision_id,
                body,
                prev,
            )
        )
    return rows, (seq, prev)


class SqlStore:
    """Store logic over a DB-API cursor. Subclasses set the dialect hooks below."""

    placeholder = "?"
    lock_rows = ""  # " FOR UPDATE" where rows can be locked individually
    # Takes a transaction-scoped lock on one policy counter key, where the write
    # transaction does not already exclude every other writer (it does in SQLite).
    lock_key = ""

    def __init__(self, *, patience: float) -> None:
        """``patience``: how long a writer waits for the group commit that takes it."""
        # The head of each writer's chain as this store last committed it. A guess,
        # never trusted: the head row is updated only if it still holds exactly that
        # (a compare-and-set), so another process or store moving the chain on costs
        # a read of the real head, not a broken chain; it saves that read otherwise.
        self._heads: dict[str, tuple[int, str]] = {}
        # Decisions and records of threads writing at the same time share one
        # transaction: one commit (one fsync, one lock on the chain head) for all.
        self._group = GroupCommit(self._commit_writes, patience=patience)

    def _write(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _read(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _q(self, sql: str) -> str:
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _one(self, sql: str, params: tuple[Any, ...]) -> Any:
        with self._read() as cur:
            cur.execute(self._q(sql), params)
            return cur.fetchone()

    def _all(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        with self._read() as cur:
            cur.execute(self._q(sql), params)
            return list(cur.fetchall())

    # -- decisions ---------------------------------------------------------------

    def create(
        self,
        decision: Decision,
        action: Action,
        *,
        audit: AuditEvent | None = None,
        also: Sequence[AuditEvent] = (),
    ) -> Decision:
        # Serialised here, before any lock is taken.
        write = Write(_decision_row(decision, action), decision.idempotency_key, audit, also)
        self._commit(write)
        if write.inserted:
            return decision
        # Lost the race for the idempotency key: the winner's row is committed now.
        existing = self.find_by_idempotency_key(decision.idempotency_key or "")
        if existing is None:
            raise RuntimeError(f"decision {decision.decision_id} could not be stored")
        return reuse_for_same_action(existing, decision.action_digest)

    def get(self, decision_id: str) -> Decision | None:
        row = self._one("SELECT decision FROM decisions WHERE decision_id = ?", (decision_id,))
        return None if row is None else Decision.model_validate_json(row[0])

    def get_action(self, decision_id: str) -> Action | None:
        row = self._one("SELECT action FROM decisions WHERE decision_id = ?", (decision_id,))
        return None if row is None else Action.model_validate_json(row[0])

    def find_by_approval(self, approval_id: str) -> Decision | None:
        row = self._one("SELECT decision FROM decisions WHERE approval_id = ?", (approval_id,))
        return None if row is None else Decision.model_validate_json(row[0])

    def find_by_idempotency_key(self, key: str) -> Decision | None:
        row = self._one("SELECT decision FROM decisions WHERE idempotency_key = ?", (key,))
        return None if row is None else Decision.model_validate_json(row[0])

    def find_open_review(self, review_key: str) -> Decision | None:
        row = self._one(_OPEN_REVIEW, (review_key,))
        return None if row is None else Decision.model_validate_json(row[0])

    def update(
        self,
        decision_id: str,
        *,
        expect_status: Status,
        expect_unconsumed: bool = False,
        audit: AuditEvent | None = None,
        **changes: Any,
    ) -> Decision | None:
        with self._write() as cur:
            cur.execute(
                self._q(f"SELECT decision FROM decisions WHERE decision_id = ?{self.lock_rows}"),
                (decision_id,),
            )
            row = cur.fetchone()
            if row is None:
                return None
            current = Decision.model_validate_json(row[0])
            if current.status is not expect_status:
                return None
            if expect_unconsumed and current.consumed_at is not None:
                return None
            updated = current.model_copy(update=changes)
            cur.execute(
                self._q(
                    "UPDATE decisions SET status = ?, consumed_at = ?, decision = ?"
                    " WHERE decision_id = ?"
                ),
                (
                    updated.status.value,
                    _iso(updated.consumed_at),
                    updated.model_dump_json(),
                    decision_id,
                ),
            )
            _, heads = self._append(cur, [audit] if audit is not None else [])
        self._remember(heads)
        return updated

    def list(self, status: Status | None = None, limit: int = 100) -> list[Decision]:
        where: str
        params: tuple[str, ...]
        if status is Status.PENDING_REVIEW:  # spelled out so the partial index applies
            where, params = "WHERE status = 'pending_review' ", ()
        else:
            where, params = ("WHERE status = ? ", (status.value,)) if status else ("", ())
        rows = self._all(
            f"SELECT decision FROM decisions {where}ORDER BY created_at DESC LIMIT ?",
            (*params, limit),
        )
        return [Decision.model_validate_json(row[0]) for row in rows]

    def outcome(self, decision_id: str) -> Outcome | None:
        row = self._one(
            "SELECT body FROM audit_records WHERE decision_id = ? AND kind = 'outcome'"
            " ORDER BY at DESC, seq DESC LIMIT 1",
            (decision_id,),
        )
        return None if row is None else Outcome.model_validate(json.loads(row[0])["data"])

    # -- policy counters (PolicyState) ---------------------------------------------

    def record(self, key: str, amount: float, at: float, keep_for: float) -> None:
        with self._write() as cur:
            self._record(cur, key, amount, at, keep_for)

    def _record(self, cur: Any, key: str, amount: float, at: float, keep_for: float) -> None:
        cur.execute(
            self._q("INSERT INTO policy_events (key, at, amount) VALUES (?, ?, ?)"),
            (key, at, amount),
        )
        if math.isfinite(keep_for):  # keep the table as small as the windows read
            cur.execute(
                self._q("DELETE FROM policy_events WHERE key = ? AND at <= ?"),
                (key, at - keep_for),
            )

    def events(self, key: str, since: float) -> builtins.list[tuple[float, float]]:
        rows = self._all(
            "SELECT at, amount FROM policy_events WHERE key = ? AND at > ? ORDER BY at",
            (key, since),
        )
        return [(float(at), float(amount)) for at, amount in rows]

    def total(self, key: str, since: float) -> float:
        return float(self._one(_WINDOW_TOTAL, (key, since))[0])

    def clear(self, key: str) -> None:
        with self._write() as cur:
            cur.execute(self._q("DELETE FROM policy_events WHERE key = ?"), (key,))

    def get_until(self, key: str) -> float | None:
        row = self._one("SELECT until FROM policy_deadlines WHERE key = ?", (key,))
        return None if row is None else float(row[0])

    def set_until(self, key: str, until: float) -> None:
        with self._write() as cur:
            cur.execute(
                self._q(
                    "INSERT INTO policy_deadlines (key, until) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET until = excluded.until"
                ),
                (key, until),
            )

    def spend(self, charges: Sequence[Charge], at: float) -> builtins.list[Charge]:
        if not charges:
            return []
        with self._write() as cur:
            if self.lock_key:
                for key in sorted({charge.key for charge in charges}):  # one order: no deadlock
                    cur.execute(self._q(self.lock_key), (key,))
            over = []
            for charge in charges:
                cur.execute(self._q(_WINDOW_TOTAL), (charge.key, at - charge.window))
                if not charge.fits(float(cur.fetchone()[0])):
                    over.append(charge)
            if not over:
                for charge in charges:
                    self._record(cur, charge.key, charge.amount, at, charge.window)
            return over

    # -- delegation (DelegationStore) ----------------------------------------------

    def add_agent_key(self, record: KeyRecord) -> None:
        with self._write() as cur:
            cur.execute(
                self._q(
                    f"INSERT INTO agent_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING"
                ),
                (
                    record.key_id,
                    record.identity,
                    record.public_key,
                    record.algorithm,
                    record.status,
                    int(record.root),
                    record.not_before,
                    record.not_after,
                    record.revoked_at,
                ),
            )
            if cur.rowcount != 1:
                raise ValueError(f"agent key {record.key_id} is already registered")

    def agent_key(self, key_id: str) -> KeyRecord | None:
        row = self._one(f"SELECT {_KEY_COLUMNS} FROM agent_keys WHERE key_id = ?", (key_id,))
        if row is None:
            return None
        key_id, identity, public_key, algorithm, status, root, not_before, not_after, revoked = row
        return KeyRecord(
            key_id=key_id,
            identity=identity,
            public_key=public_key,
            algorithm=algorithm,
            status=status,
            root=bool(root),
            not_before=not_before,
            not_after=not_after,
            revoked_at=revoked,
        )

    def revoke_agent_key(self, key_id: str, at: float) -> bool:
        with self._write() as cur:
            cur.execute(
                self._q(
                    "UPDATE agent_keys SET status = ?, revoked_at = COALESCE(revoked_at, ?)"
                    " WHERE key_id = ?"
                ),
                (KeyStatus.REVOKED, at, key_id),
            )
            return bool(cur.rowcount == 1)

    def nonce_seen(self, nonce: str) -> bool:
        return self._one("SELECT 1 FROM delegation_nonces WHERE nonce = ?", (nonce,)) is not None

    def use_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        with self._write() as cur:
            cur.execute(self._q("DELETE FROM delegation_nonces WHERE expires_at < ?"), (now,))
            cur.execute(
                self._q(
                    "INSERT INTO delegation_nonces (nonce, expires_at) VALUES (?, ?)"
                    " ON CONFLICT DO NOTHING"
                ),
                (nonce, expires_at),
            )
            return bool(cur.rowcount == 1)

    # -- the audit log -------------------------------------------------------------

    def _commit(self, write: Write) -> None:
        """Commit ``write``, with those of other threads writing at the same time."""
        self._group.submit(write)

    def _commit_writes(self, writes: builtins.list[Write]) -> None:
        """Commit ``writes`` in one transaction: one statement for their decisions (when
        none carries an idempotency key), one head update per writer, one insert for
        every record."""
        with self._write() as cur:
            self._insert_decisions(cur, writes)
            events = [event for write in writes for event in write.events()]
            records, heads = self._append(cur, events)
        self._remember(heads)
        start = 0
        for write in writes:
            write.records = records[start : start + write.written]
            start += write.written

    def _insert_decisions(self, cur: Any, writes: builtins.list[Write]) -> None:
        new = [write for write in writes if write.decision is not None]
        plain = [write for write in new if write.idempotency_key is None]
        if len(plain) > 1:
            rows = [write.decision for write in plain if write.decision is not None]
            cur.execute(self._q(_insert_decisions(len(rows))), _flat(rows))
            if cur.rowcount != len(plain):  # a decision id already taken: never by chance
                raise _NotAllInserted  # rolls back; each write is then tried on its own
            for write in plain:
                write.inserted = True
            new = [write for write in new if write.idempotency_key is not None]
        for write in new:  # on conflict, whose key it was matters: one at a time
            cur.execute(self._q(_insert_decisions(1)), write.decision)
            write.inserted = cur.rowcount == 1

    def _append(
        self, cur: Any, events: Sequence[AuditEvent]
    ) -> tuple[builtins.list[_RecordRow], dict[str, tuple[int, str]]]:
        """Seal ``events`` after their writers' heads, in the caller's transaction: per
        writer, one head update, and one insert for all the records. Returns the
        records (in the order of ``events``) and the new heads, to ``_remember`` once
        the transaction has committed."""
        if not events:
            return [], {}
        places: dict[str, builtins.list[int]] = {}  # each writer's events, by position
        for place, event in enumerate(events):
            places.setdefault(event.writer_id, []).append(place)
        records: builtins.list[Any] = [None] * len(events)
        heads: dict[str, tuple[int, str]] = {}
        for writer_id, mine in places.items():
            sealed, heads[writer_id] = self._chain(cur, writer_id, [events[i] for i in mine])
            for place, record in zip(mine, sealed, strict=True):
                records[place] = record
        for start in range(0, len(records), _ROWS_PER_INSERT):
            chunk = records[start : start + _ROWS_PER_INSERT]
            cur.execute(self._q(_insert_records(len(chunk))), _flat(chunk))
        return records, heads

    def _chain(
        self, cur: Any, writer_id: str, events: builtins.list[AuditEvent]
    ) -> tuple[builtins.list[_RecordRow], tuple[int, str]]:
        """``events`` sealed after the head of ``writer_id``'s chain, which is moved on."""
        known = self._heads.get(writer_id)
        if known is not None:
            sealed, head = _seal(events, *known)
            cur.execute(
                self._q(
                    "UPDATE audit_heads SET seq = ?, hash = ?"
                    " WHERE writer_id = ? AND seq = ? AND hash = ?"
                ),
                (*head, writer_id, *known),
            )
            if cur.rowcount == 1:
                return sealed, head
            # Moved on elsewhere (another process, another store): after the real head.
        sealed, head = _seal(events, *self._head_for_update(cur, writer_id))
        cur.execute(
            self._q("UPDATE audit_heads SET seq = ?, hash = ? WHERE writer_id = ?"),
            (*head, writer_id),
        )
        return sealed, head

    def _remember(self, heads: dict[str, tuple[int, str]]) -> None:
        """Keep the heads a committed transaction left (see ``_heads``)."""
        self._heads.update(heads)

    def _head_for_update(self, cur: Any, writer_id: str) -> tuple[int, str]:
        head_sql = self._q(f"SELECT seq, hash FROM audit_heads WHERE writer_id = ?{self.lock_rows}")
        cur.execute(head_sql, (writer_id,))
        head = cur.fetchone()
        if head is None:
            cur.execute(
                self._q(
                    "INSERT INTO audit_heads (writer_id, seq, hash) VALUES (?, 0, ?)"
                    " ON CONFLICT DO NOTHING"
                ),
                (writer_id, GENESIS),
            )
            cur.execute(head_sql, (writer_id,))
            head = cur.fetchone()
        return int(head[0]), str(head[1])

    def append_audit(self, *events: AuditEvent) -> builtins.list[AuditRecord]:
        write = Write(also=events)
        self._commit(write)
        return [AuditRecord(*record) for record in write.records]

    def decision_records(self, decision_id: str) -> builtins.list[AuditRecord]:
        rows = self._all(
            f"SELECT {_RECORD_COLUMNS} FROM audit_records WHERE decision_id = ? ORDER BY at, seq",
            (decision_id,),
        )
        return [AuditRecord(row[0], int(row[1]), *row[2:]) for row in rows]

    def audit_head(self, writer_id: str) -> ChainHead | None:
        row = self._one(
            "SELECT writer_id, seq, hash FROM audit_heads WHERE writer_id = ?", (writer_id,)
        )
        return None if row is None else ChainHead(row[0], int(row[1]), row[2])

    def audit_heads(self) -> builtins.list[ChainHead]:
        rows = self._all("SELECT writer_id, seq, hash FROM audit_heads ORDER BY writer_id", ())
        return [ChainHead(row[0], int(row[1]), row[2]) for row in rows]

    def audit_records(
        self, writer_id: str | None = None, after_seq: int = 0
    ) -> Iterator[AuditRecord]:
        # Keyset pages: no cursor or lock is held while the caller consumes records.
        writers = [writer_id] if writer_id else [h.writer_id for h in self.audit_heads()]
        for writer in writers:
            last = after_seq
            while True:
                rows = self._all(
                    f"SELECT {_RECORD_COLUMNS} FROM audit_records"
                    " WHERE writer_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (writer, last, _PAGE),
                )
                for row in rows:
                    yield AuditRecord(row[0], int(row[1]), *row[2:])
                if len(rows) < _PAGE:
                    break
                last = int(rows[-1][1])

    def audit_checkpoints(self, writer_id: str | None = None) -> builtins.list[Checkpoint]:
        where, params = ("WHERE writer_id = ? ", (writer_id,)) if writer_id else ("", ())
        rows = self._all(
            f"SELECT {_CHECKPOINT_COLUMNS} FROM audit_checkpoints {where}ORDER BY writer_id, seq",
            params,
        )
        return [Checkpoint(row[0], int(row[1]), *row[2:]) for row in rows]

    def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        with self._write() as cur:
            cur.execute(
                self._q(
                    f"INSERT INTO audit_checkpoints ({_CHECKPOINT_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                (
                    checkpoint.writer_id,
                    checkpoint.seq,
                    checkpoint.hash,
                    checkpoint.at,
                    checkpoint.key_id,
                    checkpoint.body,
                    checkpoint.signature,
                ),
            )
            return bool(cur.rowcount == 1)

    def prune_audit(self, writer_id: str, up_to_seq: int) -> int:
        with self._write() as cur:
            cur.execute(
                self._q("SELECT 1 FROM audit_checkpoints WHERE writer_id = ? AND seq = ?"),
                (writer_id, up_to_seq),
            )
            if cur.fetchone() is None:
                raise ValueError(f"no checkpoint at seq {up_to_seq} of writer {writer_id!r}")
            cur.execute(
                self._q("DELETE FROM audit_records WHERE writer_id = ? AND seq <= ?"),
                (writer_id, up_to_seq),
            )
            deleted = int(cur.rowcount)
            cur.execute(
                self._q("DELETE FROM audit_checkpoints WHERE writer_id = ? AND seq < ?"),
                (writer_id, up_to_seq),
            )
            return deleted

    # -- the server's API keys (ApiKeyStore) ---------------------------------------

    def add_api_key(self, record: ApiKeyRecord) -> None:
        with self._write() as cur:
            cur.execute(
                self._q(f"INSERT INTO api_keys ({_API_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"),
                (
                    record.key_id,
                    record.name,
                    record.role.value,
                    record.secret_hash,
                    record.created_at,
                    record.revoked_at,
                ),
            )

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        row = self._one(f"SELECT {_API_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))
        return None if row is None else _api_key(row)

    def api_keys(self) -> builtins.list[ApiKeyRecord]:
        rows = self._all(f"SELECT {_API_KEY_COLUMNS} FROM api_keys ORDER BY created_at", ())
        return [_api_key(row) for row in rows]

    def revoke_api_key(self, key_id: str, at: float) -> bool:
        with self._write() as cur:
            cur.execute(
                self._q(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE key_id = ?"
                ),
                (at, key_id),
            )
            return bool(cur.rowcount == 1)


def _api_key(row: Any) -> ApiKeyRecord:
    key_id, name, role, secret_hash, created_at, revoked_at = row
    return ApiKeyRecord(key_id, name, Role(role), secret_hash, created_at, revoked_at)
