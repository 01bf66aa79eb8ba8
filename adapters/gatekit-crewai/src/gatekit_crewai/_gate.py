"""One crewai tool call → ``gatekit.adapters.ToolCallGate`` → run the tool, or refuse.

Both the tool wrapper and the hooks translate through here. Deciding, waiting
for a review, using the approval up and reporting the outcome are the kit's
job (sync and async); this module only maps crewai's shapes onto it and a
``Refusal`` onto crewai's ``ToolFailure``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from crewai.tools.tool_failure import ToolFailure

from gatekit import DecisionRequest, Outcome
from gatekit.adapters import Refusal, Refused, ToolCallGate, digest, json_arguments

__all__ = ["GatekitToolFailure", "ToolGate", "call_request", "outcome_of"]

R = TypeVar("R")


class GatekitToolFailure(ToolFailure):
    """What a gated tool returns instead of running: gatekit's ``Refusal`` as a
    crewai ``ToolFailure``.

    Being a ``ToolFailure``, crewai shows the agent ``as_agent_message()`` (the
    refusal's message and its ``code``), records it in
    ``TaskOutput.tool_failures``, never caches it, and never turns it into a
    ``result_as_answer`` final answer. ``code`` is ``gatekit.<refusal.code>``;
    ``details`` holds ``retry_after`` and ``approval_id`` (and the decision's id,
    status and rules when there was a decision).
    """

    refusal: Refusal

    @classmethod
    def of(cls, refusal: Refusal) -> GatekitToolFailure:
        return cls(
            message=refusal.message,
            code=f"gatekit.{refusal.code}",
            retryable=refusal.retryable,
            details=_details(refusal),
            refusal=refusal,
        )


def _details(refusal: Refusal) -> dict[str, Any]:
    details: dict[str, Any] = {
        "retry_after": refusal.retry_after,
        "approval_id": refusal.approval_id,
    }
    decision = refusal.decision
    if decision is not None:
        details["decision_id"] = decision.decision_id
        details["status"] = decision.status.value
        details["rule_ids"] = list(decision.rule_ids)
    return details


def review_key(tool: str, arguments: Mapping[str, Any]) -> str | None:
    """The call's name across the agent's retries.

    A refusal for a pending review tells the agent to retry the same call once
    it is approved; with this key the retry gets that review back instead of
    opening a new one. The engine only hands a review back for the very same
    action (its digest covers the agent and run too), so the key may be coarse.
    """
    try:
        return f"crewai:{digest({'tool': tool, 'arguments': json_arguments(arguments)})}"
    except ValueError:  # not JSON (e.g. NaN): gate.request refuses the call and says why
        return None


def call_request(
    gate: ToolCallGate,
    tool: str,
    arguments: Mapping[str, Any],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> DecisionRequest:
    """The gate's request for one crewai call of ``tool``."""
    return gate.request(tool, arguments, metadata=metadata, review_key=review_key(tool, arguments))


def outcome_of(result: object) -> Outcome:
    """A tool that returns a crewai ``ToolFailure`` ran but did not succeed."""
    if isinstance(result, ToolFailure):
        return Outcome(status="error", detail=type(result).__name__)
    return Outcome(status="success")


@dataclass(frozen=True)
class ToolGate:
    """The gate in front of one crewai tool; ``tool`` is the action's name in policy."""

    gate: ToolCallGate
    tool: str

    def run(self, arguments: Mapping[str, Any], call: Callable[[], R]) -> R | GatekitToolFailure:
        """``call()`` when gatekit allows it; otherwise the refusal, and ``call`` never
        runs. The tool's own errors pass unchanged: crewai handles them as for any tool."""
        try:
            request = call_request(self.gate, self.tool, arguments)
            return self.gate.run(request, lambda _decision: call(), outcome=outcome_of)
        except Refused as refused:
            return self.refuse(refused)

    async def arun(
        self, arguments: Mapping[str, Any], call: Callable[[], Awaitable[R]]
    ) -> R | GatekitToolFailure:
        """The async form of ``run``."""
        try:
            request = call_request(self.gate, self.tool, arguments)
            return await self.gate.arun(request, lambda _decision: call(), outcome=outcome_of)
        except Refused as refused:
            return self.refuse(refused)

    def refuse(self, refused: Refused) -> GatekitToolFailure:
        """What the agent sees instead of the result; with ``on_denied="raise"`` the
        gatekit error is raised instead."""
        return GatekitToolFailure.of(self.gate.refusal(refused))
