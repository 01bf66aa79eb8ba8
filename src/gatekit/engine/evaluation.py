"""How the engine reaches a verdict: which policy, and in what order it is asked."""

from __future__ import annotations

import os
from dataclasses import replace

from gatekit._models import Check, CheckOutcome, DecisionRequest, Verdict
from gatekit.policy import (
    DefaultPolicy,
    Evaluation,
    FilePolicy,
    Policy,
    PolicyState,
    apply_risk_floor,
)

__all__ = ["as_policy", "evaluate"]


def as_policy(
    policy: Policy | str | os.PathLike[str] | None, state: PolicyState | None = None
) -> Policy:
    """A policy object as given, a policy file (reloaded when edited, its counters in
    ``state``), or the built-in default policy."""
    if policy is None:
        return DefaultPolicy()
    if isinstance(policy, str | os.PathLike):
        return FilePolicy(policy, state=state)
    return policy


def evaluate(policy: Policy, request: DecisionRequest) -> Evaluation:
    """The verdict for ``request``: the client's own blocking checks first, then the
    policy, then the risk floor, which nothing can lift. A policy that fails blocks."""
    client_blocks = [c for c in request.client_checks if c.outcome is CheckOutcome.BLOCK]
    if client_blocks:
        names = ", ".join(
            sorted({f"{c.name} ({c.detail})" if c.detail else c.name for c in client_blocks})
        )
        return Evaluation(
            Verdict.BLOCK, f"blocked by client checks: {names}", (), tuple(request.client_checks)
        )
    try:
        evaluation = policy.evaluate(request)
    except Exception as exc:  # a broken policy must deny, never allow
        failure = Check(name="policy.error", outcome=CheckOutcome.BLOCK, detail=type(exc).__name__)
        return Evaluation(Verdict.BLOCK, "policy evaluation failed", (), (failure,))
    evaluation = apply_risk_floor(evaluation, request.action.risk_level)
    if request.client_checks:
        evaluation = replace(evaluation, checks=(*request.client_checks, *evaluation.checks))
    return evaluation
