from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from gatekit._exceptions import IdempotencyConflict
from gatekit._models import Action, Decision, Outcome, Status
from gatekit.audit._records import AuditEvent, AuditRecord, ChainHead, Checkpoint
from gatekit.policy.state import PolicyState


class Store(PolicyState, Protocol):
    """Where the engine keeps decisions, the audit log and the policy counters
    (``PolicyState``). Every method is atomic.

    Implementations must make ``create`` and ``update`` safe under concurrent
    callers: two creates with the same idempotency key yield one decision, and
    ``update`` is a compare-and-set that at most one racer wins. An ``audit``
    event passed to a write is appended to its writer's chain in the same
    transaction, and only if the write happens.
    """

    def create(
        self,
        decision: Decision,
        action: Action,
        *,
        audit: AuditEvent | None = None,
        also: Sequence[AuditEvent] = (),
    ) -> Decision:
        """Insert a decision. If its idempotency key is taken, return the stored
        decision when the action digest matches, else raise IdempotencyConflict.
        ``also`` are records (the writer's queued outcomes) appended in the same
        transaction, whether or not the decision is inserted."""
        ...

    def get(self, decision_id: str) -> Decision | None: ...

    def get_action(self, decision_id: str) -> Action | None:
        """The (masked) action a decision was made for, for re-checks."""
        ...

    def find_by_approval(self, approval_id: str) -> Decision | None: ...

    def find_by_idempotency_key(self, key: str) -> Decision | None: ...

    def find_open_review(self, review_key: str) -> Decision | None:
        """The newest decision with ``review_key`` that is pending review, or approved
        and not yet used (expiry is the engine's to judge)."""
        ...

    def update(
        self,
        decision_id: str,
        *,
        expect_status: Status,
        expect_unconsumed: bool = False,
        audit: AuditEvent | None = None,
        **changes: Any,
    ) -> Decision | None:
        """Apply ``changes`` only if the decision is still in ``expect_status``
        (and unconsumed, if asked). Returns the new decision, or None if the
        condition no longer holds."""
        ...

    def list(self, status: Status | None = None, limit: int = 100) -> list[Decision]: ...

    def outcome(self, decision_id: str) -> Outcome | None:
        """The last outcome recorded for a decision (its ``outcome`` audit records)."""
        ...

    # -- the audit log ---------------------------------------------------------

    def append_audit(self, *events: AuditEvent) -> builtins.list[AuditRecord]:
        """Append records that go with no state change (outcomes, a refused use), in
        one transaction."""
        ...

    def decision_records(self, decision_id: str) -> builtins.list[AuditRecord]:
        """Every audit record about one decision, oldest first (by time, then position)."""
        ...

    def audit_head(self, writer_id: str) -> ChainHead | None: ...

    def audit_heads(self) -> builtins.list[ChainHead]: ...

    def audit_records(
        self, writer_id: str | None = None, after_seq: int = 0
    ) -> Iterator[AuditRecord]:
        """Records ordered by writer, then seq (``after_seq`` applies per writer)."""
        ...

    def audit_checkpoints(self, writer_id: str | None = None) -> builtins.list[Checkpoint]: ...

    def add_checkpoint(self, checkpoint: Checkpoint) -> bool:
        """Store a signed checkpoint; False if that position was already signed."""
        ...

    def prune_audit(self, writer_id: str, up_to_seq: int) -> int:
        """Delete records up to ``up_to_seq`` (a checkpointed position) and the
        checkpoints before it; the checkpoint at ``up_to_seq`` stays as anchor."""
        ...

    def close(self) -> None: ...


def reuse_for_same_action(existing: Decision, action_digest: str) -> Decision:
    """An idempotency key returns its decision only for the very same action."""
    if existing.action_digest != action_digest:
        raise IdempotencyConflict(
            f"idempotency key {existing.idempotency_key!r} was already used for a different action"
        )
    return existing
