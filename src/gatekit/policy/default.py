"""The built-in policy used when no policy file is configured."""

from __future__ import annotations

from gatekit._models import DecisionRequest, RiskLevel, Verdict
from gatekit.policy._base import Evaluation


class DefaultPolicy:
    """Low-risk actions run; everything else waits for a human."""

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        risk = request.action.risk_level
        if risk is RiskLevel.LOW:
            return Evaluation(Verdict.ALLOW, "low-risk action", ("default.low-risk",))
        return Evaluation(
            Verdict.REVIEW,
            f"{risk.value}-risk action needs human review",
            ("default.needs-review",),
        )
