"""Rate limits (calls per window) and budgets (an argument summed per window).

A decision spends the quota (``charge``, through ``PolicyState.spend``): the
check and the record are one atomic step in the state, so a limit holds under
concurrent callers in several processes sharing a store. ``check`` only reads
the counters (a preview, ``policy explain``); re-checking an approved action
just before it runs does neither, so it never spends twice. Calls that were
allowed or sent to review count; blocked calls do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gatekit._models import Action, Check, CheckOutcome
from gatekit.policy.rules import NameMatcher
from gatekit.policy.schema import LimitScope, LimitSpec
from gatekit.policy.state import Charge, PolicyState

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

    def charge(self, action: Action) -> Charge | None:
        """What a call of ``action`` spends; None when its cost cannot be read."""
        cost = self.cost(action)
        if cost is None:
            return None
        return Charge(self.key(action), cost, self.maximum, self.window)

    def check(self, action: Action, state: PolicyState, now: float) -> LimitHit | None:
        """Would ``action`` exceed the limit now? Reads the counters, records nothing."""
        charge = self.charge(action)
        if charge is None:
            return self.unreadable()
        if charge.fits(state.total(charge.key, now - self.window)):
            return None
        return self.exceeded(charge, state, now)

    def unreadable(self) -> LimitHit:
        where = "args." + ".".join(self.sum_path or ())
        detail = f"budget needs a non-negative number at {where} (is it captured?)"
        return self._hit(detail, None, where)

    def exceeded(self, charge: Charge, state: PolicyState, now: float) -> LimitHit:
        """Why ``charge`` does not fit, and when waiting would let it."""
        key, cost = charge.key, charge.amount
        used = state.total(key, now - self.window)
        unit = "calls" if self.sum_path is None else "total"
        detail = (
            f"{unit} {_num(used)} + {_num(cost)} would exceed {_num(self.maximum)} "
            f"per {_num(self.window)} s ({self.scope.value} {key.split(':', 1)[1]})"
        )
        if cost > self.maximum:
            return self._hit(detail, None, None)
        return self._hit(detail, self._retry_after(state, key, cost, now), None)

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
