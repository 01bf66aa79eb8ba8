from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Protocol

from gatekit._models import Action, Check, Decision, DecisionRequest, RiskLevel, Verdict


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


def as_policy(policy: Policy | str | os.PathLike[str] | None) -> Policy:
    """A policy object, a policy file (reloaded when edited), or the default policy."""
    if policy is None:
        from gatekit.policy.default import DefaultPolicy

        return DefaultPolicy()
    if isinstance(policy, str | os.PathLike):
        from gatekit.policy.reload import FilePolicy

        return FilePolicy(policy)
    return policy


def observe_decision(policy: Policy, decision: Decision, action: Action) -> None:
    """Tell a stateful policy what was decided (limits and trust count it)."""
    hook = getattr(policy, "observe_decision", None)
    if hook is not None:
        hook(decision, action)


def observe_review(policy: Policy, decision: Decision) -> None:
    """Tell a stateful policy what a human decided (approval memory counts it)."""
    hook = getattr(policy, "observe_review", None)
    if hook is not None:
        hook(decision)


_rechecking: ContextVar[bool] = ContextVar("gatekit_policy_rechecking", default=False)


@contextmanager
def rechecking() -> Iterator[None]:
    """Evaluations inside re-check an action already decided (just before it runs).

    Its rate limits and budgets were charged when it was decided, so they are
    not checked again; everything else (rules, shields, trust) is.
    """
    token = _rechecking.set(True)
    try:
        yield
    finally:
        _rechecking.reset(token)


def is_recheck() -> bool:
    return _rechecking.get()
