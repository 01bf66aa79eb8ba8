"""Rate limits (calls per window) and budgets (an argument summed per window).

``check`` only reads the counters; the engine records usage when a decision
is made (``record``), so re-checking an approved action before it runs does
not spend the quota twice. Calls that were allowed or sent to review count;
blocked calls do not. Concurrent callers may overshoot a limit by at most the
number of decisions in flight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gatekit._models import Action, Check, CheckOutcome
from gatekit.policy.rules import NameMatcher
from gatekit.policy.schema import LimitScope, LimitSpec
from gatekit.policy.state import PolicyState

__all__ = ["Limit", "LimitHit"]


@dataclass(frozen=True, slots=True)
class LimitHit:
    check: Check
    reason: str
    retry_after: float | None  # None: waiting will not help (one call exceeds the budget)


@dataclass(frozen=True, slots=True)
class Limit:
    id: str
    scope: LimitScope
    tools: NameMatcher | None
    agents: NameMatcher | None
    window: float
    maximum: float
    sum_path: tuple[str, ...] | None
    reason: str

    @classmethod
    def build(cls, spec: LimitSpec) -> Limit:
        maximum = spec.max_calls if spec.max_calls is not None else spec.max_total
        assert maximum is not None  # the schema requires one of them
        return cls(
            id=spec.id,
            scope=spec.per,
            tools=NameMatcher.of(spec.tools) if spec.tools else None,
            agents=NameMatcher.of(spec.agents) if spec.agents else None,
            window=spec.window,
            maximum=float(maximum),
            sum_path=tuple(spec.sum.removeprefix("args.").split(".")) if spec.sum else None,
            reason=spec.reason,
        )

    @property
    def name(self) -> str:
        return f"limit.{self.id}"

    def applies_to(self, action: Action) -> bool:
        return (self.tools is None or self.tools(action.tool)) and (
            self.agents is None or self.agents(action.agent_id or "")
        )

    def key(self, action: Action) -> str:
        agent = action.agent_id or "-"
        subject = {
            LimitScope.AGENT: agent,
            LimitScope.TOOL: action.tool,
            LimitScope.AGENT_TOOL: f"{agent}/{action.tool}",
            LimitScope.GLOBAL: "*",
        }[self.scope]
        return f"{self.name}:{subject}"

    def cost(self, action: Action) -> float | None:
        """1 per call, or the summed argument; None when that argument is not a number."""
        if self.sum_path is None:
            return 1.0
        value: object = action.arguments
        for part in self.sum_path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if math.isfinite(value) and value >= 0 else None

    def check(self, action: Action, state: PolicyState, now: float) -> LimitHit | None:
        cost = self.cost(action)
        if cost is None:
            where = "args." + ".".join(self.sum_path or ())
            detail = f"budget needs a non-negative number at {where} (is it captured?)"
            return self._hit(detail, None, where)
        key = self.key(action)
        used = state.total(key, now - self.window)
        if used + cost <= self.maximum:
            return None
        unit = "calls" if self.sum_path is None else "total"
        detail = (
            f"{unit} {_num(used)} + {_num(cost)} would exceed {_num(self.maximum)} "
            f"per {_num(self.window)} s ({self.scope.value} {key.split(':', 1)[1]})"
        )
        if cost > self.maximum:
            return self._hit(detail, None, None)
        return self._hit(detail, self._retry_after(state, key, cost, now), None)

    def record(self, action: Action, state: PolicyState, now: float) -> None:
        cost = self.cost(action)
        if cost:
            state.record(self.key(action), cost, now, self.window)

    def _retry_after(self, state: PolicyState, key: str, cost: float, now: float) -> float:
        """Seconds until enough old usage leaves the window for this call to fit."""
        events = state.events(key, now - self.window)
        remaining = sum(amount for _, amount in events)
        for at, amount in events:
            remaining -= amount
            if remaining + cost <= self.maximum:
                return max(at + self.window - now, 0.001)
        return self.window

    def _hit(self, detail: str, retry_after: float | None, path: str | None) -> LimitHit:
        reason = self.reason or f"limit {self.id} reached"
        check = Check(name=self.name, outcome=CheckOutcome.BLOCK, detail=detail, path=path)
        return LimitHit(check, f"{reason}: {detail}", retry_after)


def _num(value: float) -> str:
    return f"{value:g}"
