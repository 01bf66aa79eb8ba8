"""Approval memory: the very same low/medium-risk action, approved by humans
``after`` times, is allowed without asking again. A rejection resets the count.

"The very same" is the action digest (tool, arguments, agent and governance
fields): a different amount or recipient is a different action.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gatekit._models import Decision, RiskLevel, Status
from gatekit.policy.schema import ApprovalMemorySpec
from gatekit.policy.state import PolicyState

__all__ = ["APPROVAL_MEMORY_RULE", "ApprovalMemory"]

APPROVAL_MEMORY_RULE = "approval-memory"


@dataclass(frozen=True, slots=True)
class ApprovalMemory:
    spec: ApprovalMemorySpec

    def approvals(self, digest: str, state: PolicyState, now: float) -> int:
        since = now - self.spec.window if self.spec.window is not None else -math.inf
        return int(state.total(_key(digest), since))

    def remembers(self, digest: str, risk: RiskLevel, state: PolicyState, now: float) -> bool:
        if risk.never_auto_allowed:
            return False
        return self.approvals(digest, state, now) >= self.spec.after

    def observe_review(self, decision: Decision, state: PolicyState, now: float) -> None:
        key = _key(decision.action_digest)
        if decision.status is Status.APPROVED:
            state.record(key, 1.0, now, self.spec.window or math.inf)
        elif decision.status is Status.REJECTED:
            state.clear(key)


def _key(digest: str) -> str:
    return f"approvals:{digest}"
