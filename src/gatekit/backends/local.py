"""The embedded engine: policy + store, in this process, nothing to start."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from gatekit._exceptions import (
    ApprovalConsumed,
    ApprovalExpired,
    Blocked,
    ReviewConflict,
    ValidationError,
)
from gatekit._models import (
    Check,
    CheckOutcome,
    Decision,
    DecisionRequest,
    Outcome,
    Status,
    Verdict,
)
from gatekit._settings import Settings
from gatekit.policy import (
    Evaluation,
    Policy,
    apply_risk_floor,
    as_policy,
    observe_decision,
    observe_review,
    rechecking,
)
from gatekit.store import MemoryStore, Store, reuse_for_same_action

Clock = Callable[[], datetime]

_STATUS_FOR_VERDICT = {
    Verdict.ALLOW: Status.ALLOWED,
    Verdict.REVIEW: Status.PENDING_REVIEW,
    Verdict.BLOCK: Status.BLOCKED,
}


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class LocalBackend:
    """Decides in-process. Safe to share between threads.

    ``approval_ttl`` bounds how long a review may take and an approval may wait
    to be used; past it the decision is ``expired``, which is a denial.
    """

    def __init__(
        self,
        policy: Policy | str | os.PathLike[str] | None = None,
        store: Store | None = None,
        *,
        approval_ttl: float = 3600.0,
        clock: Clock = _utcnow,
    ) -> None:
        if approval_ttl <= 0:
            raise ValidationError("approval_ttl must be positive", field="approval_ttl")
        self.policy: Policy = as_policy(policy)  # a path: a policy file, reloaded on edit
        self.store: Store = store or MemoryStore()
        self._approval_ttl = timedelta(seconds=approval_ttl)
        self._now = clock

    # -- the decision path -------------------------------------------------

    def decide(self, request: DecisionRequest) -> Decision:
        key = request.action.idempotency_key
        if key is not None:
            existing = self.store.find_by_idempotency_key(key)
            if existing is not None:
                return self._expire_if_due(reuse_for_same_action(existing, request.action_digest))
        decision = self._new_decision(request, self._evaluate(request))
        stored = self.store.create(decision, request.action)
        if stored.decision_id == decision.decision_id:  # not a concurrent duplicate
            observe_decision(self.policy, stored, request.for_policy().action)
        return stored

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        """The embedded engine as configured by ``GATEKIT_*`` settings."""
        return cls(policy=settings.policy, approval_ttl=settings.approval_ttl)

    def _evaluate(self, request: DecisionRequest) -> Evaluation:
        client_blocks = [c for c in request.client_checks if c.outcome is CheckOutcome.BLOCK]
        if client_blocks:
            names = ", ".join(
                sorted({f"{c.name} ({c.detail})" if c.detail else c.name for c in client_blocks})
            )
            return Evaluation(
                Verdict.BLOCK,
                f"blocked by client checks: {names}",
                (),
                tuple(request.client_checks),
            )
        try:
            evaluation = self.policy.evaluate(request.for_policy())
        except Exception as exc:  # a broken policy must deny, never allow
            return Evaluation(
                Verdict.BLOCK,
                "policy evaluation failed",
                (),
                (
                    Check(
                        name="policy.error", outcome=CheckOutcome.BLOCK, detail=type(exc).__name__
                    ),
                ),
            )
        evaluation = apply_risk_floor(evaluation, request.action.risk_level)
        if request.client_checks:
            evaluation = replace(evaluation, checks=(*request.client_checks, *evaluation.checks))
        return evaluation

    def _new_decision(self, request: DecisionRequest, evaluation: Evaluation) -> Decision:
        status = _STATUS_FOR_VERDICT[evaluation.verdict]
        now = self._now()
        needs_review = status is Status.PENDING_REVIEW
        return Decision(
            decision_id=_new_id("dec"),
            status=status,
            reason=evaluation.reason,
            tool=request.action.tool,
            action_digest=request.action_digest,
            created_at=now,
            rule_ids=list(evaluation.rule_ids),
            checks=list(evaluation.checks),
            approval_id=_new_id("apr") if needs_review else None,
            expires_at=now + self._approval_ttl if needs_review else None,
            retry_after=evaluation.retry_after,
            trust_level=evaluation.trust_level,
            idempotency_key=request.action.idempotency_key,
        )

    def get_decision(self, decision_id: str) -> Decision:
        decision = self.store.get(decision_id)
        if decision is None:
            raise ValidationError(f"unknown decision {decision_id!r}", field="decision_id")
        return self._expire_if_due(decision)

    def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
        """Re-check just before execution, then mark the decision used.

        Refuses a changed action, a used or expired approval, and an action the
        current policy now blocks.
        """
        decision = self.get_decision(decision_id)
        if decision.action_digest != request.action_digest:
            raise Blocked(decision, "the action changed after it was decided")
        if decision.status is Status.EXPIRED:
            raise ApprovalExpired(decision)
        if decision.consumed_at is not None:
            raise ApprovalConsumed(decision, "this decision was already used")
        if not decision.allowed:
            raise Blocked(decision, f"decision is {decision.status.value}, not allowed")
        stored_action = self.store.get_action(decision_id) or request.action
        with rechecking():  # limits were charged when it was decided; not twice
            recheck = self._evaluate(request.model_copy(update={"action": stored_action}))
        if recheck.verdict is Verdict.BLOCK:
            raise Blocked(decision, f"policy now blocks this action: {recheck.reason}")
        consumed = self.store.update(
            decision_id,
            expect_status=decision.status,
            expect_unconsumed=True,
            consumed_at=self._now(),
        )
        if consumed is None:
            raise ApprovalConsumed(decision, "this decision was already used")
        return consumed

    def report(self, decision_id: str, outcome: Outcome) -> None:
        self.get_decision(decision_id)
        self.store.record_outcome(decision_id, outcome)

    def _expire_if_due(self, decision: Decision) -> Decision:
        open_for_use = decision.status is Status.PENDING_REVIEW or (
            decision.status is Status.APPROVED and decision.consumed_at is None
        )
        if not open_for_use or decision.expires_at is None or self._now() < decision.expires_at:
            return decision
        expired = self.store.update(
            decision.decision_id,
            expect_status=decision.status,
            status=Status.EXPIRED,
            reason="the approval window closed",
        )
        return expired or self.get_decision(decision.decision_id)

    # -- review --------------------------------------------------------------

    def pending(self) -> list[Decision]:
        return [self._expire_if_due(d) for d in self.store.list(Status.PENDING_REVIEW)]

    def approve(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        return self._review(approval_id, Status.APPROVED, reviewer, comment)

    def reject(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        return self._review(approval_id, Status.REJECTED, reviewer, comment)

    def _review(self, approval_id: str, verdict: Status, reviewer: str, comment: str) -> Decision:
        if not reviewer.strip():
            raise ValidationError("a review needs the reviewer's identity", field="reviewer")
        found = self.store.find_by_approval(approval_id)
        if found is None:
            raise ValidationError(f"unknown approval {approval_id!r}", field="approval_id")
        decision = self._expire_if_due(found)
        reason = f"{verdict.value} by {reviewer}" + (f": {comment}" if comment else "")
        reviewed = self.store.update(
            decision.decision_id,
            expect_status=Status.PENDING_REVIEW,
            status=verdict,
            reviewer=reviewer,
            review_comment=comment or None,
            reason=reason,
        )
        if reviewed is None:
            current = self.get_decision(decision.decision_id)
            raise ReviewConflict(
                f"approval {approval_id} is already {current.status.value}"
                + (f" (by {current.reviewer})" if current.reviewer else "")
            )
        observe_review(self.policy, reviewed)
        return reviewed

    # -- lifecycle -------------------------------------------------------------

    def ready(self) -> bool:
        return True

    def close(self) -> None:
        self.store.close()

    # The engine is in-process and its work is short; the async forms call the
    # sync ones directly rather than paying for a thread hop on every call.

    async def adecide(self, request: DecisionRequest) -> Decision:
        return self.decide(request)

    async def aget_decision(self, decision_id: str) -> Decision:
        return self.get_decision(decision_id)

    async def aconsume(self, decision_id: str, request: DecisionRequest) -> Decision:
        return self.consume(decision_id, request)

    async def areport(self, decision_id: str, outcome: Outcome) -> None:
        self.report(decision_id, outcome)

    async def aready(self) -> bool:
        return self.ready()

    async def aclose(self) -> None:
        self.close()
