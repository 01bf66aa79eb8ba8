"""The gate shared by the proxy and the mcp 2.x middleware: one ``tools/call`` in,
a ``CallToolResult`` (wire form) out.

The tool runs only after an allowed decision. Every way of not getting one —
a denial, a pending review, a rejected review, a broken backend, an invalid
action — ends in an ``isError`` result with the reason, never in a crashed
session and never in a run of the tool.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from gatekit import (
    Action,
    AsyncClient,
    BackendError,
    Check,
    CheckOutcome,
    Decision,
    DecisionError,
    DecisionRequest,
    GatekitError,
    Outcome,
    PendingReview,
    Status,
    Verdict,
)
from gatekit._exceptions import ApprovalTimeout
from gatekit_mcp._compat import ProgressFn, ToolCall, Wire
from gatekit_mcp.config import ProxyConfig
from gatekit_mcp.pins import PinStatus
from gatekit_mcp.shields import shield_result

__all__ = ["ToolGate", "error_result"]

logger = logging.getLogger("gatekit_mcp")

_MAX_REMEMBERED_REVIEWS = 1000


def error_result(text: str, decision: Decision | None = None) -> Wire:
    """A ``CallToolResult`` (wire form) that tells the model why nothing ran."""
    result: Wire = {"content": [{"type": "text", "text": text}], "isError": True}
    if decision is not None:
        result["_meta"] = {
            "gatekit/decision": {
                "status": decision.status.value,
                "decision_id": decision.decision_id,
                "approval_id": decision.approval_id,
                "rule_ids": decision.rule_ids,
            }
        }
    return result


def _depends_on_arguments(check: Check) -> bool:
    """A check about the arguments, or a condition the empty probe could not evaluate."""
    return (check.path or "").startswith("args") or "condition" in check.name


def _denial_text(error: DecisionError) -> str:
    decision = error.decision
    if isinstance(error, PendingReview) or decision.status is Status.PENDING_REVIEW:
        return (
            f"gatekit: this call is waiting for human review (approval id "
            f"{decision.approval_id}); it did not run. Retry the same call once it is approved."
        )
    if decision.status is Status.REJECTED:
        return f"gatekit: a reviewer rejected this call: {error.reason}"
    if decision.status is Status.EXPIRED:
        return f"gatekit: the approval for this call expired: {error.reason}"
    return f"gatekit blocked this call: {error.reason}"


class ToolGate:
    """Decide, wait for review if configured, run, shield the result, report."""

    def __init__(
        self,
        client: AsyncClient,
        config: ProxyConfig,
        *,
        server_name: str,
        toolset: str | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.server_name = config.server_name or server_name
        self.toolset = config.toolset or toolset
        # action digest -> decision id of a call left pending, so the model's
        # retry of the same call finds the (now approved) review.
        self._pending: dict[str, Decision] = {}  # action digest → its open review
        self._fields: dict[str, dict[str, Any]] = {}  # per tool, from the config

    # -- actions -----------------------------------------------------------------

    def action(
        self, name: str, arguments: dict[str, Any], client_name: str | None = None
    ) -> Action:
        fields = self._fields.get(name)
        if fields is None:
            fields = self.config.fields_for(name).action_fields()
            fields.setdefault("systems_touched", [self.server_name])
            self._fields[name] = fields
        context = {"server": self.server_name, "toolset": self.toolset, "client": client_name}
        return Action(
            tool=name,
            arguments=arguments,
            metadata={"mcp": {k: v for k, v in context.items() if v is not None}},
            **fields,
        )

    def always_blocked(self, name: str) -> bool:
        """Would policy block this tool whatever its arguments? (for tools/list)

        Asks the embedded engine's policy directly — a dry run: nothing is
        recorded, no counter moves — with the tool's configured fields and empty
        arguments, and hides the tool only if that is a block with no check
        pointing into the arguments and no condition that could not be evaluated
        (a condition on an argument the probe lacks). Another backend (a remote server) offers
        no dry run, so nothing is hidden there. Hiding is a convenience for the
        model; every call is gated regardless.
        """
        policy = getattr(self.client.backend, "policy", None)
        if policy is None:
            return False
        try:
            action = self.action(name, {}).model_copy(
                update={"agent_id": self.client.settings.agent_id}
            )
            evaluation = policy.evaluate(DecisionRequest.for_action(action))
        except Exception:
            return False  # unknown: show it; the call itself is still gated
        return bool(
            evaluation.verdict is Verdict.BLOCK
            and not any(_depends_on_arguments(check) for check in evaluation.checks)
        )

    # -- the call ------------------------------------------------------------------

    async def call(
        self,
        call: ToolCall,
        run: Callable[[], Awaitable[Wire]],
        *,
        pin: PinStatus | None = None,
    ) -> Wire:
        try:
            request = self._request(call, pin)
            decision = await self._authorize(request, call.progress)
        except DecisionError as error:
            return error_result(_denial_text(error), error.decision)
        except BackendError as error:
            logger.warning("gatekit: no valid decision for %s: %s", call.name, error)
            return error_result(
                f"gatekit: no valid decision could be had ({error}); the call did not run."
            )
        except GatekitError as error:  # e.g. an invalid action: refuse, do not run
            return error_result(f"gatekit refused this call: {error}")
        if pin is not None and pin.changed and self.config.pins.block_changed:
            # The engine was told (a blocking check) and should have blocked; a
            # backend that ignores client checks must not make this tool run.
            await self.client.report(
                decision,
                Outcome(status="error", detail="not run: tool definition changed"),
                quiet=True,
            )
            return error_result(
                f"gatekit blocked this call: the definition of tool {call.name!r} changed since "
                f"it was pinned; approve it with: gatekit-mcp pins approve {call.name}",
                decision,
            )
        try:
            result = await run()
        except BaseException as error:
            with anyio.CancelScope(shield=True):
                await self.client.report(
                    decision, Outcome(status="error", detail=type(error).__name__), quiet=True
                )
            raise
        return await self._shielded(call.name, decision, result)

    def _request(self, call: ToolCall, pin: PinStatus | None) -> DecisionRequest:
        action = self.action(call.name, call.arguments, call.client_name)
        if pin is not None and pin.changed:
            action = action.model_copy(
                update={"metadata": {**action.metadata, "mcp_pin": pin.as_metadata()}}
            )
        request = self.client.prepare(action)
        if pin is None or not pin.changed:
            return request
        blocks = self.config.pins.block_changed
        check = Check(
            name="mcp.tool_definition_changed",
            outcome=CheckOutcome.BLOCK if blocks else CheckOutcome.WARN,
            detail=f"definition changed since it was pinned ({pin.pinned[:12]} -> "
            f"{pin.current[:12]}); approve with: gatekit-mcp pins approve {call.name}",
        )
        return request.model_copy(update={"client_checks": [*request.client_checks, check]})

    async def _authorize(self, request: DecisionRequest, progress: ProgressFn | None) -> Decision:
        client = self.client
        decision = await self._remembered(request) or await client.decide(request)
        if decision.status is Status.PENDING_REVIEW and self.config.review.wait_seconds > 0:
            decision = await self._wait(decision, progress)
        if decision.status is Status.PENDING_REVIEW:
            self._remember(decision)
            raise PendingReview(decision)
        self._pending.pop(request.action_digest, None)
        return await client.consume(decision, request)

    async def _remembered(self, request: DecisionRequest) -> Decision | None:
        pending = self._pending.get(request.action_digest)
        if pending is None:
            return None
        try:
            return await self.client.refresh(pending)
        except GatekitError:  # forgotten by the backend: decide afresh
            self._pending.pop(request.action_digest, None)
            return None

    def _remember(self, decision: Decision) -> None:
        self._pending[decision.action_digest] = decision
        while len(self._pending) > _MAX_REMEMBERED_REVIEWS:
            del self._pending[next(iter(self._pending))]

    async def _wait(self, decision: Decision, progress: ProgressFn | None) -> Decision:
        """Wait (bounded) for a reviewer, telling the client we are alive meanwhile."""
        outcome: Decision | GatekitError = decision
        async with anyio.create_task_group() as group:
            if progress is not None:
                group.start_soon(self._report_progress, decision, progress)
            try:
                outcome = await self.client.wait_for_approval(
                    decision, self.config.review.wait_seconds
                )
            except ApprovalTimeout as timeout:
                outcome = timeout.decision
            except GatekitError as error:  # raised outside the group, not as an ExceptionGroup
                outcome = error
            finally:
                group.cancel_scope.cancel()
        if isinstance(outcome, GatekitError):
            raise outcome
        return outcome

    async def _report_progress(self, decision: Decision, progress: ProgressFn) -> None:
        interval = self.config.review.progress_interval
        total = self.config.review.wait_seconds
        waited = 0.0
        while True:
            await anyio.sleep(interval)
            waited += interval
            await progress(
                min(waited, total),
                total,
                f"waiting for human review (approval id {decision.approval_id})",
            )

    async def _shielded(self, name: str, decision: Decision, result: Wire) -> Wire:
        verdict = shield_result(result, self.config.shields)
        status = "error" if result.get("isError") else "success"
        if not verdict.findings:
            await self.client.report(decision, Outcome(status=status), quiet=True)
            return result
        action = "withheld" if verdict.blocked else "recorded"
        detail = f"result shields ({action}): {verdict.summary()}"
        logger.warning("gatekit: %s result of %s: %s", action, name, verdict.summary())
        await self.client.report(decision, Outcome(status=status, detail=detail[:2000]), quiet=True)
        if verdict.blocked:
            kinds = ", ".join(sorted({f"{f.kind} ({f.detector})" for f in verdict.blocked_by}))
            return error_result(
                f"gatekit withheld this tool's result: it contained {kinds}.", decision
            )
        return verdict.result
