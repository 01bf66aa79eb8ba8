"""Agent trust: repeated blocked calls lower it, time restores it.

* **normal**: the policy applies as written.
* **reduced** (``reduced_after`` blocked calls within ``window``, or on
  probation for one ``window`` after a quarantine): nothing runs without a
  human: every ``allow`` becomes ``review``, and approval memory is off.
* **quarantined** (``quarantine_after`` blocked calls within ``window``):
  every action of the agent is blocked for ``quarantine_for`` seconds.
  Blocks caused by the quarantine itself do not count, so the agent is let
  out on time; its block history is cleared when it goes in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gatekit._models import Decision, Status
from gatekit.policy.schema import TrustSpec
from gatekit.policy.state import PolicyState

__all__ = ["QUARANTINE_RULE", "REDUCED_RULE", "Trust", "TrustLevel"]

QUARANTINE_RULE = "trust.quarantined"
REDUCED_RULE = "trust.reduced"


class TrustLevel(StrEnum):
    NORMAL = "normal"
    REDUCED = "reduced"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class Trust:
    spec: TrustSpec

    def level(self, agent: str, state: PolicyState, now: float) -> tuple[TrustLevel, str]:
        """The agent's level and a sentence saying why."""
        until = state.get_until(_quarantine_key(agent))
        if until is not None and now < until:
            return TrustLevel.QUARANTINED, f"quarantined for {until - now:.0f} s more"
        blocks = state.total(_blocks_key(agent), now - self.spec.window)
        window = f"{blocks:g} blocked calls in the last {self.spec.window:g} s"
        if blocks >= self.spec.quarantine_after:
            return TrustLevel.QUARANTINED, window
        if until is not None and now < until + self.spec.window:
            return TrustLevel.REDUCED, "on probation after a quarantine"
        if blocks >= self.spec.reduced_after:
            return TrustLevel.REDUCED, window
        return TrustLevel.NORMAL, window

    def observe(self, decision: Decision, agent: str, state: PolicyState, now: float) -> None:
        if decision.status is not Status.BLOCKED or QUARANTINE_RULE in decision.rule_ids:
            return
        key = _blocks_key(agent)
        state.record(key, 1.0, now, self.spec.window)
        if state.total(key, now - self.spec.window) >= self.spec.quarantine_after:
            state.set_until(_quarantine_key(agent), now + self.spec.quarantine_for)
            state.clear(key)


def _blocks_key(agent: str) -> str:
    return f"trust.blocks:{agent}"


def _quarantine_key(agent: str) -> str:
    return f"trust.quarantine:{agent}"
