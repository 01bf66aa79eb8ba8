from __future__ import annotations

from typing import Any, Protocol

from gatekit._exceptions import IdempotencyConflict
from gatekit._models import Action, Decision, Outcome, Status


class Store(Protocol):
    """Where the engine keeps decisions. Every method is atomic.

    Implementations must make ``create`` and ``update`` safe under concurrent
    callers: two creates with the same idempotency key yield one decision, and
    ``update`` is a compare-and-set that at most one racer wins.
    """

    def create(self, decision: Decision, action: Action) -> Decision:
        """Insert a decision. If its idempotency key is taken, return the stored
        decision when the action digest matches, else raise IdempotencyConflict."""
        ...

    def get(self, decision_id: str) -> Decision | None: ...

    def get_action(self, decision_id: str) -> Action | None:
        """The (masked) action a decision was made for, for re-checks."""
        ...

    def find_by_approval(self, approval_id: str) -> Decision | None: ...

    def find_by_idempotency_key(self, key: str) -> Decision | None: ...

    def update(
        self,
        decision_id: str,
        *,
        expect_status: Status,
        expect_unconsumed: bool = False,
        **changes: Any,
    ) -> Decision | None:
        """Apply ``changes`` only if the decision is still in ``expect_status``
        (and unconsumed, if asked). Returns the new decision, or None if the
        condition no longer holds."""
        ...

    def list(self, status: Status | None = None, limit: int = 100) -> list[Decision]: ...

    def record_outcome(self, decision_id: str, outcome: Outcome) -> None: ...

    def close(self) -> None: ...


def reuse_for_same_action(existing: Decision, action_digest: str) -> Decision:
    """An idempotency key returns its decision only for the very same action."""
    if existing.action_digest != action_digest:
        raise IdempotencyConflict(
            f"idempotency key {existing.idempotency_key!r} was already used for a different action"
        )
    return existing
