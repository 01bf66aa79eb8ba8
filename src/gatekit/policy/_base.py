"""What every policy shares: the ``Evaluation`` it answers with, the risk floor, and
how the engine tells a stateful policy what happened."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from enum import Enum
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


def observe_decision(policy: Policy, decision: Decision, action: Action) -> None:
    """Tell a stateful policy what was decided (trust counts blocked calls)."""
    hook = getattr(policy, "observe_decision", None)
    if hook is not None:
        hook(decision, action)


def observe_review(policy: Policy, decision: Decision) -> None:
    """Tell a stateful policy what a human decided (approval memory counts it)."""
    hook = getattr(policy, "observe_review", None)
    if hook is not None:
        hook(decision)


class LimitUse(Enum):
    """What an evaluation does with rate limits and budgets."""

    SPEND = "spend"  # a decision: check and record, atomically
    CHECK = "check"  # a dry run (preview, explain): check only, record nothing
    SKIP = "skip"  # the re-check just before running: already spent when decided


_limit_use: ContextVar[LimitUse] = ContextVar("gatekit_limit_use", default=LimitUse.SPEND)


@contextmanager
def _using_limits(use: LimitUse) -> Iterator[None]:
    token = _limit_use.set(use)
    try:
        yield
    finally:
        _limit_use.reset(token)


def rechecking() -> AbstractContextManager[None]:
    """Evaluations inside re-check an action already decided (just before it runs):
    its limits were spent when it was decided, so they are not looked at again;
    everything else (rules, shields, trust) is."""
    return _using_limits(LimitUse.SKIP)


def dry_run() -> AbstractContextManager[None]:
    """Evaluations inside record nothing: limits are checked, not spent."""
    return _using_limits(LimitUse.CHECK)


def limit_use() -> LimitUse:
    return _limit_use.get()
