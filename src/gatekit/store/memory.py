"""An in-process store: fast, and gone when the process ends."""

from __future__ import annotations

import builtins
import heapq
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from gatekit._models import Action, Decision, Outcome, Status
from gatekit.api_keys import ApiKeyRecord
from gatekit.audit._records import GENESIS, AuditEvent, AuditRecord, ChainHead, Checkpoint
from gatekit.delegation.records import KeyRecord, KeyStatus
from gatekit.policy.state import Charge, MemoryPolicyState
from gatekit.store._base import reuse_for_same_action


class MemoryStore:
    """Every store method, in memory; the policy counters too (``MemoryPolicyState``)."""

    def __init__(self) -> None:
        self._counters = MemoryPolicyState()
        self._lock = threading.RLock()
        self._decisions: dict[str, Decision] = {}
        self._actions: dict[str, Action] = {}
        self._by_key: dict[str, str] = {}
        self._by_approval: dict[str, str] = {}
        self._chains: dict[str, list[AuditRecord]] = {}
        self._heads: dict[str, ChainHead] = {}
        self._checkpoints: dict[tuple[str, int], Checkpoint] = {}
        self._agent_keys: dict[str, KeyRecord] = {}
        self._nonces: dict[str, float] = {}
        self._nonce_expiry: list[tuple[float, str]] = []  # a heap
        self._api_keys: dict[str, ApiKeyRecord] = {}

    def create(
        self,
        decision: Decision,
        action: Action,
        *,
        audit: AuditEvent | None = None,
        also: Sequence[AuditEvent] = (),
    ) -> Decision:
        with self._lock:
            self.append_audit(*also)
            key = decision.idempotency_key
            if key is not None and key in self._by_key:
                existing = self._decisions[self._by_key[key]]
                return reuse_for_same_action(existing, decision.action_digest)
            self._decisions[decision.decision_id] = decision
            self._actions[decision.decision_id] = action
            if key is not None:
                self._by_key[key] = decision.decision_id
            if decision.approval_id is not None:
                self._by_approval[decision.approval_id] = decision.decision_id
            if audit is not None:
                self._append(audit)
            return decision

    def get(self, decision_id: str) -> Decision | None:
        return self._decisions.get(decision_id)

    def get_action(self, decision_id: str) -> Action | None:
        return self._actions.get(decision_id)

    def find_by_approval(self, approval_id: str) -> Decision | None:
        decision_id = self._by_approval.get(approval_id)
        return None if decision_id is None else self._decisions[decision_id]

    def find_by_idempotency_key(self, key: str) -> Decision | None:
        decision_id = self._by_key.get(key)
        return None if decision_id is None else self._decisions[decision_id]

    def find_open_review(self, review_key: str) -> Decision | None:
        with self._lock:
            open_reviews = [
                d
                for d in self._decisions.values()
                if d.review_key == review_key
                and d.consumed_at is None
                and d.status in (Status.PENDING_REVIEW, Status.APPROVED)
            ]
        return max(open_reviews, key=lambda d: d.created_at, default=None)

    def update(
        self,
        decision_id: str,
        *,
        expect_status: Status,
        expect_unconsumed: bool = False,
        audit: AuditEvent | None = None,
        **changes: Any,
    ) -> Decision | None:
        with self._lock:
            current = self._decisions.get(decision_id)
            if current is None or current.status is not expect_status:
                return None
            if expect_unconsumed and current.consumed_at is not None:
                return None
            updated = current.model_copy(update=changes)
            self._decisions[decision_id] = updated
            if audit is not None:
                self._append(audit)
            return updated

    def list(self, status: Status | None = None, limit: int = 100) -> list[Decision]:
        matching = [d for d in self._decisions.values() if status is None or d.status is status]
        return sorted(matching, key=lambda d: d.created_at, reverse=True)[:limit]

    def outcome(self, decision_id: str) -> Outcome | None:
        outcomes = [r for r in self.decision_records(decision_id) if r.kind == "outcome"]
        if not outcomes:
            return None
        return Outcome.model_validate(json.loads(outcomes[-1].body)["data"])

    # -- policy counters (PolicyState) --------------------------------------------

    def record(self, key: str, amount: float, at: float, keep_for: float) -> None:
        self._counters.record(key, amount, at, keep_for)

    def events(self, key: str, since: float) -> builtins.list[tuple[float, float]]:
        return self._counters.events(key, since)

    def total(self, key: str, since: float) -> float:
        return self._counters.total(key, since)

    def clear(self, key: str) -> None:
        self._counters.clear(key)

    def get_until(self, key: str) -> float | None:
        return self._counters.get_until(key)

    def set_until(self, key: str, until: float) -> None:
        self._counters.set_until(key, until)

    def spend(self, charges: Sequence[Charge], at: float) -> builtins.list[Charge]:
        return self._counters.spend(charges, at)

    # -- delegation (DelegationStore) -------------------------------------------

    def add_agent_key(self, record: KeyRecord) -> None:
        with self._lock:
            if record.key_id in self._agent_keys:
                raise ValueError(f"agent key {record.key_id} is already registered")
            self._agent_keys[record.key_id] = record

    def agent_key(self, key_id: str) -> KeyRecord | None:
        return self._agent_keys.get(key_id)

    def revoke_agent_key(self, key_id: str, at: float) -> bool:
        with self._lock:
            record = self._agent_keys.get(key_id)
            if record is None:
                return False
            revoked_at = record.revoked_at if record.revoked_at is not None else at
            self._agent_keys[key_id] = replace(
                record, status=KeyStatus.REVOKED, revoked_at=revoked_at
            )
            return True

    def nonce_seen(self, nonce: str) -> bool:
        return nonce in self._nonces

    def use_nonce(self, nonce: str, expires_at: float, now: float) -> bool:
        with self._lock:
            while self._nonce_expiry and self._nonce_expiry[0][0] < now:  # oldest first
                _, stale = heapq.heappop(self._nonce_expiry)
                self._nonces.pop(stale, None)
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = expires_at
            heapq.heappush(self._nonce_expiry, (expires_at, nonce))
            return True

    # -- the audit log ---------------------------------------------------------

    def append_audit(self, *events: AuditEvent) -> builtins.list[AuditRecord]:
        with self._lock:
            return [self._append(event) for event in events]

    def _append(self, event: AuditEvent) -> AuditRecord:
        head = self._heads.get(event.writer_id) or ChainHead(event.writer_id, 0, GENESIS)
        record = event.seal(head.seq + 1, head.hash)
        self._chains.setdefault(event.writer_id, []).append(record)
        self._heads[event.writer_id] = ChainHead(event.writer_id, record.seq, record.hash)
        return record

    def decision_records(self, decision_id: str) -> builtins.list[AuditRecord]:
        with self._lock:
            found = [
                r for chain in self._chains.values() for r in chain if r.decision_id == decision_id
            ]
        return sorted(found, key=lambda r: (r.at, r.seq))

    def audit_head(self, writer_id: str) -> ChainHead | None:
        return self._heads.get(writer_id)

    def audit_heads(self) -> builtins.list[ChainHead]:
        return [self._heads[w] for w in sorted(self._heads)]

    def audit_records(
        self, writer_id: str | None = None, after_seq: int = 0
    ) -> Iterator[AuditRecord]:
        with self._lock:
            writers = [writer_id] if writer_id else sorted(self._chains)
            snapshot = [r for w in writers for r in self._chains.get(w, []) if r.seq > after_seq]
        return iter(snapshot)

    def audit_checkpoints(self, writer_id: str | None = None) -> builtins.list[Checkpoint]:
        return [
            cp
            for key, cp in sorted(self._checkpoints.items())
            if writer_id is None or key[0] == writer_id
        ]

    def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        with self._lock:
            key = (checkpoint.writer_id, checkpoint.seq)
            if key in self._checkpoints:
                return False
            self._checkpoints[key] = checkpoint
            return True

    def prune_audit(self, writer_id: str, up_to_seq: int) -> int:
        with self._lock:
            if (writer_id, up_to_seq) not in self._checkpoints:
                raise ValueError(f"no checkpoint at seq {up_to_seq} of writer {writer_id!r}")
            chain = self._chains.get(writer_id, [])
            kept = [r for r in chain if r.seq > up_to_seq]
            self._chains[writer_id] = kept
            for key in [k for k in self._checkpoints if k[0] == writer_id and k[1] < up_to_seq]:
                del self._checkpoints[key]
            return len(chain) - len(kept)

    def close(self) -> None:
        """Nothing to release."""

    # -- the server's API keys (ApiKeyStore) -------------------------------------

    def add_api_key(self, record: ApiKeyRecord) -> None:
        with self._lock:
            if record.key_id in self._api_keys:
                raise ValueError(f"API key {record.key_id} already exists")
            self._api_keys[record.key_id] = record

    def api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self._api_keys.get(key_id)

    def api_keys(self) -> builtins.list[ApiKeyRecord]:
        return sorted(self._api_keys.values(), key=lambda record: record.created_at)

    def revoke_api_key(self, key_id: str, at: float) -> bool:
        with self._lock:
            record = self._api_keys.get(key_id)
            if record is None:
                return False
            if record.revoked_at is None:
                self._api_keys[key_id] = replace(record, revoked_at=at)
            return True
