"""The shape of a policy file, validated by pydantic.

These models describe what a person writes; ``RulePolicy`` compiles them into the
plain structures the engine evaluates, so nothing here runs on the hot path.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gatekit._models import DataSensitivity, OperationClass, RiskLevel, Verdict

__all__ = [
    "ApprovalMemorySpec",
    "LimitScope",
    "LimitSpec",
    "MatchSpec",
    "PolicySpec",
    "RuleSpec",
    "ShieldAction",
    "ShieldSpec",
    "ShieldsSpec",
    "TrustSpec",
    "parse_duration",
]


def _as_list(value: Any) -> Any:
    """Let a single value stand for a one-item list: ``tools: pay_invoice``."""
    return [value] if isinstance(value, str) else value


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """Seconds from ``90``, ``"90s"``, ``"5m"``, ``"1h"`` or ``"1d"``."""
    if isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 1h, 1d)")
        return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return value


Patterns = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_as_list)]
Duration = Annotated[float, BeforeValidator(parse_duration), Field(gt=0)]


def _enum_list(enum: Any) -> Any:
    return Annotated[list[enum], BeforeValidator(_as_list)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatchSpec(_Spec):
    """Which actions a rule is about. Every field given must match (AND);
    within a field, any listed value matches (OR). Names accept ``*``/``?`` globs."""

    tools: Patterns = Field(default_factory=list)
    intents: Patterns = Field(default_factory=list)
    operations: _enum_list(OperationClass) = Field(default_factory=list)  # type: ignore[valid-type]
    sensitivities: _enum_list(DataSensitivity) = Field(default_factory=list)  # type: ignore[valid-type]
    risk_levels: _enum_list(RiskLevel) = Field(default_factory=list)  # type: ignore[valid-type]
    systems: Patterns = Field(default_factory=list)
    agents: Patterns = Field(default_factory=list)


class RuleSpec(_Spec):
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    match: MatchSpec = Field(default_factory=MatchSpec)
    when: str | None = Field(default=None, min_length=1, description="A CEL condition.")
    verdict: Verdict
    reason: str = ""
    description: str = ""


class ShieldAction(StrEnum):
    BLOCK = "block"
    REVIEW = "review"
    LOG = "log"


class ShieldSpec(_Spec):
    """One argument shield: what to do on a finding, and where to look."""

    action: ShieldAction = ShieldAction.BLOCK
    tools: Patterns = Field(default_factory=list, description="Only these tools (default: all).")
    arguments: Patterns = Field(
        default_factory=list, description="Only these argument paths, e.g. args.command."
    )
    allow_hosts: Patterns = Field(
        default_factory=list, description="SSRF: internal hosts that are allowed."
    )
    roots: list[str] = Field(
        default_factory=list, description="Path traversal: absolute paths must stay under these."
    )


class ShieldsSpec(_Spec):
    path_traversal: ShieldSpec | None = None
    shell_injection: ShieldSpec | None = None
    ssrf: ShieldSpec | None = None
    secrets: ShieldSpec | None = None
    pii: ShieldSpec | None = None


class LimitScope(StrEnum):
    AGENT = "agent"  # one counter per agent, across the matching tools
    TOOL = "tool"  # one counter per tool, across agents
    AGENT_TOOL = "agent_tool"  # one counter per (agent, tool)
    GLOBAL = "global"  # one counter for everything that matches


class LimitSpec(_Spec):
    """Calls per window, or (with ``sum``) a numeric argument summed per window."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    per: LimitScope = LimitScope.AGENT
    tools: Patterns = Field(default_factory=list)
    agents: Patterns = Field(default_factory=list)
    window: Duration
    max_calls: int | None = Field(default=None, gt=0)
    sum: str | None = Field(default=None, min_length=1, description="Argument to add up.")
    max_total: float | None = Field(default=None, gt=0)
    reason: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> LimitSpec:
        if (self.max_calls is None) == (self.max_total is None):
            raise ValueError("a limit needs exactly one of max_calls or max_total")
        if (self.sum is None) != (self.max_total is None):
            raise ValueError("`sum` (the argument to add up) and max_total go together")
        return self


class TrustSpec(_Spec):
    """Blocked calls within ``window`` lower an agent's trust.

    normal → reduced after ``reduced_after`` blocks (every allow becomes a
    review); → quarantined after ``quarantine_after`` blocks (everything is
    blocked for ``quarantine_for``); after quarantine the agent is on
    probation (reduced) for one more ``window``.
    """

    window: Duration = 600.0
    reduced_after: int = Field(default=3, gt=0)
    quarantine_after: int = Field(default=6, gt=0)
    quarantine_for: Duration = 900.0

    @model_validator(mode="after")
    def _ordered(self) -> TrustSpec:
        if self.quarantine_after < self.reduced_after:
            raise ValueError("quarantine_after must be >= reduced_after")
        return self


class ApprovalMemorySpec(_Spec):
    """After ``after`` human approvals of the very same action, allow it."""

    after: int = Field(default=3, gt=0)
    window: Duration | None = Field(default=None, description="Count approvals this recent only.")


class PolicySpec(_Spec):
    version: int = Field(default=1, ge=1, le=1)
    default: Verdict = Verdict.REVIEW
    default_reason: str = "no rule matched"
    rules: list[RuleSpec] = Field(default_factory=list)
    shields: ShieldsSpec = Field(default_factory=ShieldsSpec)
    limits: list[LimitSpec] = Field(default_factory=list)
    trust: TrustSpec | None = None
    approval_memory: ApprovalMemorySpec | None = None
