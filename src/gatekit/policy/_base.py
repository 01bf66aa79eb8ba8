from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Protocol

from gatekit._models import Check, DecisionRequest, RiskLevel, Verdict


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A policy's answer for one action."""

    verdict: Verdict
    reason: str
    rule_ids: tuple[str, ...] = ()
    checks: tuple[Check, ...] = field(default_factory=tuple)
    retry_after: float | None = None
    trust_level: str | None = None


class Policy(Protocol):
    """Anything that can evaluate a decision request. Must not raise for valid input."""

    def evaluate(self, request: DecisionRequest) -> Evaluation: ...


def apply_risk_floor(evaluation: Evaluation, risk: RiskLevel) -> Evaluation:
    """High and critical actions are never auto-allowed: at best they go to review."""
    if evaluation.verdict is Verdict.ALLOW and risk.never_auto_allowed:
        return replace(
            evaluation,
            verdict=Verdict.REVIEW,
            reason=f"{risk.value}-risk actions always need human review ({evaluation.reason})",
        )
    return evaluation
