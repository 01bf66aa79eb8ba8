"""One crewai tool call → Action → gatekit decision → run the body, or refuse.

Both the tool wrapper and the hooks translate through here; no policy lives in
this module, only the mapping between crewai's shapes and gatekit's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

from crewai.tools.tool_failure import ToolFailure
from pydantic_core import to_jsonable_python

from gatekit import (
    Action,
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalTimeout,
    AsyncClient,
    BackendError,
    Blocked,
    Client,
    Decision,
    DecisionError,
    GatekitError,
    PendingReview,
    RateLimited,
    Rejected,
    ValidationError,
    default_client,
)

__all__ = ["Gate", "Refusal", "refusal_for"]

logger = logging.getLogger("gatekit.crewai")

R = TypeVar("R")

# Most specific first: RateLimited is a Blocked. (error, refusal code, what the agent is told)
_WHY_NOT: tuple[tuple[type[DecisionError], str, str], ...] = (
    (RateLimited, "rate_limited", "rate limited"),
    (Blocked, "blocked", "blocked by policy"),
    (Rejected, "rejected", "rejected by a reviewer"),
    (PendingReview, "pending_review", "waiting for human review"),
    (ApprovalTimeout, "approval_timeout", "no reviewer decided in time"),
    (ApprovalExpired, "expired", "the approval expired"),
    (ApprovalConsumed, "approval_consumed", "the approval was already used"),
)
_RETRYABLE = (RateLimited, PendingReview, ApprovalTimeout, ApprovalExpired, BackendError)


class Refusal(ToolFailure):
    """What a gated tool returns instead of running.

    A crewai ``ToolFailure``: the agent sees ``as_agent_message()`` (the reason),
    crewai records it in ``TaskOutput.tool_failures``, never caches it, and never
    turns it into a ``result_as_answer`` final answer. ``decision`` is the
    decision that refused, or None when no decision could be had.
    """

    decision: Decision | None = None


def refusal_for(tool: str, error: BaseException) -> Refusal:
    """The refusal the agent sees: the decision's reason, never backend internals."""
    if isinstance(error, DecisionError):
        decision = error.decision
        code, why = next(
            ((code, text) for kind, code, text in _WHY_NOT if isinstance(error, kind)),
            ("denied", "not allowed"),
        )
        message = f"gatekit did not let tool '{tool}' run: {why}: {error.reason}"
        if isinstance(error, PendingReview | ApprovalTimeout) and decision.approval_id:
            message += f" (approval {decision.approval_id})"
        if isinstance(error, RateLimited) and error.retry_after is not None:
            message += f" (retry after {error.retry_after:g} s)"
        return Refusal(
            message=message,
            code=f"gatekit.{code}",
            retryable=isinstance(error, _RETRYABLE),
            details={
                "decision_id": decision.decision_id,
                "status": decision.status.value,
                "rule_ids": list(decision.rule_ids),
                "approval_id": decision.approval_id,
            },
            decision=decision,
        )
    return Refusal(
        message=(
            f"gatekit could not get a decision for tool '{tool}', so it did not run; "
            "try again later or report it to an operator"
        ),
        code="gatekit.no_decision",
        retryable=True,
        details={"error": type(error).__name__},
    )


def as_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    """Tool arguments as JSON values (what an Action can carry)."""
    return {name: to_jsonable_python(value, fallback=repr) for name, value in values.items()}


@dataclass(frozen=True)
class Gate:
    """How one tool's calls are governed: the client and the Action fields to send."""

    client: Client | AsyncClient | None
    fields: Mapping[str, Any]
    wait: bool = True
    timeout: float | None = None
    raise_on_deny: bool = False

    @classmethod
    def create(
        cls,
        tool: str,
        client: Client | AsyncClient | None,
        fields: Mapping[str, Any],
        *,
        wait: bool = True,
        timeout: float | None = None,
        raise_on_deny: bool = False,
    ) -> Gate:
        """A gate for ``tool``; invalid Action fields raise ValidationError now, not per call."""
        if "arguments" in fields:
            raise ValidationError("arguments come from each tool call", field="arguments")
        if client is not None and not isinstance(client, Client | AsyncClient):
            raise TypeError(f"client must be a gatekit Client or AsyncClient, not {client!r}")
        merged = {"tool": tool, **fields}
        Action(**merged)
        return cls(client, merged, wait, timeout, raise_on_deny)

    @property
    def tool(self) -> str:
        return str(self.fields["tool"])

    def action(
        self, arguments: Mapping[str, Any], metadata: Mapping[str, Any] | None = None
    ) -> Action:
        fields = dict(self.fields)
        if metadata:
            fields["metadata"] = {**fields.get("metadata", {}), **metadata}
        return Action(**fields, arguments=as_arguments(arguments))

    def sync_client(self) -> Client:
        # The twin shares the configured client's backend and settings.
        return (self.client or default_client()).as_sync()

    def async_client(self) -> AsyncClient:
        return (self.client or default_client()).as_async()

    def deny(self, error: Exception) -> Refusal:
        """Turn a failure to get permission into a refusal (or raise, if configured)."""
        if isinstance(error, DecisionError):
            logger.info("gatekit: %s refused: %s", self.tool, error.reason)
        else:
            logger.warning("gatekit: no decision for %s; not running it: %r", self.tool, error)
        if not self.raise_on_deny:
            return refusal_for(self.tool, error)
        if isinstance(error, GatekitError):
            raise error
        raise BackendError(f"could not decide {self.tool}: {type(error).__name__}") from error

    def run(self, arguments: Mapping[str, Any], body: Callable[[], R]) -> R | Refusal:
        """Run ``body`` only when gatekit allows the call, then report its outcome."""
        with ExitStack() as stack:
            try:
                client = self.sync_client()
                action = self.action(arguments)
                stack.enter_context(client.guard(action, wait=self.wait, timeout=self.timeout))
            except Exception as error:  # any failure to get permission: do not run
                return self.deny(error)
            return body()

    async def arun(
        self, arguments: Mapping[str, Any], body: Callable[[], Awaitable[R]]
    ) -> R | Refusal:
        """The async form of ``run``."""
        async with AsyncExitStack() as stack:
            try:
                client = self.async_client()
                action = self.action(arguments)
                guard = client.guard(action, wait=self.wait, timeout=self.timeout)
                await stack.enter_async_context(guard)
            except Exception as error:  # any failure to get permission: do not run
                return self.deny(error)
            return await body()
