"""An in-process store: fast, and gone when the process ends."""

from __future__ import annotations

import threading
from typing import Any

from gatekit._models import Action, Decision, Outcome, Status
from gatekit.store._base import reuse_for_same_action


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._decisions: dict[str, Decision] = {}
        self._actions: dict[str, Action] = {}
        self._by_key: dict[str, str] = {}
        self._by_approval: dict[str, str] = {}
        self._outcomes: dict[str, Outcome] = {}

    def create(self, decision: Decision, action: Action) -> Decision:
        with self._lock:
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

    def update(
        self,
        decision_id: str,
        *,
        expect_status: Status,
        expect_unconsumed: bool = False,
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
            return updated

    def list(self, status: Status | None = None, limit: int = 100) -> list[Decision]:
        matching = [d for d in self._decisions.values() if status is None or d.status is status]
        return sorted(matching, key=lambda d: d.created_at, reverse=True)[:limit]

    def record_outcome(self, decision_id: str, outcome: Outcome) -> None:
        with self._lock:
            self._outcomes[decision_id] = outcome

    def outcome(self, decision_id: str) -> Outcome | None:
        return self._outcomes.get(decision_id)

    def close(self) -> None:
        """Nothing to release."""
