"""The gate shared by the proxy and the mcp 2.x middleware: one ``tools/call`` in,
a ``CallToolResult`` (wire form) out.

It is the adapter kit's ``ToolCallGate`` with MCP around it: decide, wait for a
review (sending MCP progress notifications) or refuse, use the decision up,
call the upstream tool, shield its result, and queue the outcome report, which
is sent once the answer is on its way (``reports``). Every way of
not running — a denial, a pending, rejected or expired review, a broken
backend, an invalid call — ends in an ``isError`` result carrying the kit's
``Refusal`` message, never in a crashed session and never in a run of the tool.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import anyio

from gatekit import (
    Action,
    AsyncClient,
    Check,
    CheckOutcome,
    Decision,
    DecisionRequest,
    GatekitError,
    Outcome,
    Status,
    ValidationError,
)
from gatekit.adapters import Refusal, Refused, ToolCallGate
from gatekit_mcp._compat import ProgressFn, ToolCall, Wire
from gatekit_mcp.config import ProxyConfig, ShieldsConfig, ToolFields
from gatekit_mcp.pins import PinStatus
from gatekit_mcp.reports import reports
from gatekit_mcp.shields import ShieldVerdict, shield_result

__all__ = [
    "NAME_CHECK",
    "PIN_CHECK",
    "ToolGate",
    "error_result",
    "mcp_metadata",
    "name_problem",
    "refusal_result",
    "review_key",
    "scanned",
    "screen",
]

logger = logging.getLogger("gatekit_mcp")

PIN_CHECK = "mcp.tool_definition_changed"
NAME_CHECK = "mcp.tool_name_not_exact"

ReviewHook = Callable[[DecisionRequest, Decision], Awaitable[Decision]]
T = TypeVar("T")


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


def refusal_result(refusal: Refusal) -> Wire:
    """The ``isError`` result for a call gatekit did not run."""
    return error_result(refusal.message, refusal.decision)


def mcp_metadata(server: str, toolset: str | None, client_name: str | None) -> dict[str, Any]:
    """The MCP context recorded on every action, under ``"mcp"``."""
    context = {"server": server, "toolset": toolset, "client": client_name}
    return {"mcp": {key: value for key, value in context.items() if value is not None}}


def review_key(
    *,
    server: str,
    tool: str,
    arguments: Any,
    fields: Mapping[str, Any],
    client_name: str | None,
    session_id: str | None,
) -> str | None:
    """The key that names a call across its retries: the same tool on the same
    server, asked by the same client (and transport session) with the very same
    arguments and action fields (None if they cannot be written down at all).

    The engine hands a retry with this key the review an earlier try opened
    (approved by now, perhaps) instead of opening another, once it has checked
    that the action is the very same (its digest); keys live in the engine's
    store, so they outlast a proxy restart and are shared by replicas. Computed
    from the call, before it is prepared: a request is prepared once (preparing
    spends a call of a run's limits), with its key. A plain SHA-256 of sorted JSON,
    not the RFC 8785 digest: the key only has to come out the same for the same
    call, and it is computed for every call (a value JSON has no form for is
    written as its ``repr``, as the action records it).
    """
    named = {
        "server": server,
        "tool": tool,
        "client": {"name": client_name, "session": session_id},
        "arguments": arguments,
        "fields": fields,
    }
    try:
        text = json.dumps(named, sort_keys=True, default=repr)
    except (TypeError, ValueError):  # keys of mixed types, a value that holds itself
        return None
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be decided on as it is, if it cannot.

    The core trims an action's tool name; the upstream receives the name exactly as
    sent. A name with surrounding whitespace or invisible characters would be
    decided as one tool and run as another, so it is refused, never normalised.
    """
    if name != name.strip() or not name.isprintable():
        return (
            f"the tool name {name!r} is not exactly a tool name (surrounding whitespace or "
            "invisible characters); it is refused, not normalised"
        )
    return None


def _name_check(detail: str) -> Check:
    return Check(name=NAME_CHECK, outcome=CheckOutcome.BLOCK, detail=detail)


# Results with more text than this are scanned in a worker thread. Smaller ones
# scan in microseconds, less than the hop to a thread and back costs.
OFF_LOOP_CHARS = 16_384


def _larger_than(value: Any, budget: int) -> int:
    """What is left of ``budget`` after the text in ``value`` (below 0: larger)."""
    if isinstance(value, str):
        return budget - len(value)
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for item in items:
        budget = _larger_than(item, budget)
        if budget < 0:
            break
    return budget


async def scanned(scan: Callable[[Any], T], value: Any) -> T:
    """``scan(value)``: in line when ``value`` holds little text, else in a worker
    thread, so that it does not hold up the event loop that serves every other
    request and client meanwhile."""
    if _larger_than(value, OFF_LOOP_CHARS) >= 0:
        return scan(value)
    return await anyio.to_thread.run_sync(scan, value)


async def screen(result: Wire, shields: ShieldsConfig) -> ShieldVerdict:
    """The result shields' verdict on ``result`` (a ``CallToolResult``, wire form)."""
    return await scanned(partial(shield_result, config=shields), result)


def _depends_on_arguments(check: Check) -> bool:
    """A check about the arguments, or a condition the empty probe could not evaluate."""
    return (check.path or "").startswith("args") or "condition" in check.name


def _pin_check(tool: str, pin: PinStatus, blocks: bool) -> Check:
    return Check(
        name=PIN_CHECK,
        outcome=CheckOutcome.BLOCK if blocks else CheckOutcome.WARN,
        detail=f"definition changed since it was pinned ({pin.pinned[:12]} -> "
        f"{pin.current[:12]}); approve with: gatekit-mcp pins approve {tool}",
    )


@dataclass(frozen=True, slots=True)
class _Screened:
    """An upstream result after the result shields: what the model is shown, and
    what the outcome record says."""

    shown: Wire
    upstream_failed: bool
    verdict: ShieldVerdict

    def outcome(self) -> Outcome:
        status = "error" if self.upstream_failed else "success"
        if not self.verdict.findings:
            return Outcome(status=status)
        handled = "withheld" if self.verdict.blocked else "recorded"
        detail = f"result shields ({handled}): {self.verdict.summary()}"
        return Outcome(status=status, detail=detail[:2000])


def _withheld(verdict: ShieldVerdict, decision: Decision) -> Wire:
    kinds = ", ".join(sorted({f"{f.kind} ({f.detector})" for f in verdict.blocked_by}))
    return error_result(f"gatekit withheld this tool's result: it contained {kinds}.", decision)


class ToolGate:
    """Decide, wait for review or refuse, run, shield the result, report."""

    def __init__(
        self,
        client: AsyncClient,
        config: ProxyConfig,
        *,
        server_name: str,
        toolset: str | None = None,
    ) -> None:
        self.config = config
        self.server_name = config.server_name or server_name
        self.toolset = config.toolset or toolset
        self.kit = ToolCallGate(
            client,
            on_review=config.on_review,
            review_timeout=config.review_timeout,
            tools={name: self._action_fields(config.fields_for(name)) for name in config.tools},
            default=self._action_fields(config.default),
        )

    def _action_fields(self, fields: ToolFields) -> dict[str, Any]:
        # Unless configured, the system a tool call touches is the server it goes to.
        return {"systems_touched": [self.server_name], **fields.action_fields()}

    def metadata(self, client_name: str | None) -> dict[str, Any]:
        return mcp_metadata(self.server_name, self.toolset, client_name)

    # -- tools/list ----------------------------------------------------------------

    async def always_blocked(self, name: str) -> bool:
        """Would policy block this tool whatever its arguments? (for tools/list)

        Asks for a dry run (``client.preview``: nothing recorded, no limit spent,
        the risk floor applied, so a high-risk tool policy allows is a review, not
        a block) of the tool's probe action: its configured fields, empty
        arguments. The tool is hidden only when that is a block and nothing in it
        hangs on the arguments: no check points into them and no condition went
        unevaluated for lack of them. A rate limit passes with time, so it hides
        nothing; nor does a backend that cannot preview. Hiding is a convenience
        for the model: every call is gated regardless.
        """
        try:
            probe = Action(
                **{**self.kit.fields_for(name), "metadata": self.metadata(None)}, tool=name
            )
            preview = await self.kit.aclient.preview(probe)
        except GatekitError as error:
            logger.debug("gatekit: no preview for %s, shown: %s", name, error)
            return False
        return (
            preview.status is Status.BLOCKED
            and preview.retry_after is None
            and not any(_depends_on_arguments(check) for check in preview.checks)
        )

    # -- tools/call ----------------------------------------------------------------

    async def call(
        self,
        call: ToolCall,
        run: Callable[[], Awaitable[Wire]],
        *,
        pin: PinStatus | None = None,
        checks: Sequence[Check] = (),
    ) -> Wire:
        """Gate one ``tools/call``: ``run()`` (the upstream call) only when allowed.

        ``checks`` are more of the caller's own findings (a blocking one refuses the
        call whatever the policy says, and the decision records it)."""
        try:
            request = self._request(call, pin, checks)
            decision = await self.kit.aauthorize(request, review=self._review(call.progress))
        except Refused as refused:  # the upstream was not called
            return refusal_result(self.kit.refusal(refused))
        # The outcome is reported after the answer, not before it (``reports``).
        try:
            screened = await self._run_and_screen(call.name, run, decision)
        except BaseException as error:  # a cancelled call is recorded too
            reports.put(self.kit.aclient, decision, Outcome.of_error(error))
            raise
        reports.put(self.kit.aclient, decision, screened.outcome())
        return screened.shown

    def _request(
        self, call: ToolCall, pin: PinStatus | None, found: Sequence[Check]
    ) -> DecisionRequest:
        metadata = self.metadata(call.client_name)
        checks = list(found)
        problem = name_problem(call.name)
        if problem is not None:
            metadata["mcp_tool_name"] = call.name  # the action's tool is the trimmed name
            checks.append(_name_check(problem))
        if pin is not None and pin.changed:
            # A blocking client check: the client refuses to run the tool whatever
            # a backend answers, and the decision and its audit record show why.
            metadata["mcp_pin"] = pin.as_metadata()
            checks.append(_pin_check(call.name, pin, self.config.pins.block_changed))
        key = review_key(
            server=self.server_name,
            tool=call.name,
            arguments=call.arguments,
            fields=self.kit.fields_for(call.name),
            client_name=call.client_name,
            session_id=call.session_id,
        )
        request = self.kit.request(
            call.name, call.arguments, metadata=metadata, checks=checks, review_key=key
        )
        if request.action.tool != call.name and problem is None:
            # Whatever else the core may ever normalise: decide only on the name that runs.
            detail = f"the tool name {call.name!r} would be decided as {request.action.tool!r}"
            raise Refused(call.name, ValidationError(detail))
        return request

    # -- the upstream's requests to the client ------------------------------------

    async def relay(self, request: ToolCall, send: Callable[[], Awaitable[Wire]]) -> Wire:
        """Gate one request the upstream makes of the client (sampling, elicitation),
        as an action named by its method: ``send()`` relays it and returns the
        client's answer, only when allowed. Raises ``Refused`` when it must not reach
        the client; the outcome (the client answered, or did not) is reported."""
        prepared = self._request(request, None, ())
        decision = await self.kit.aauthorize(prepared, review=self._review(None))
        try:
            answer = await send()
        except BaseException as error:  # the client's error answer, or a cancel
            reports.put(self.kit.aclient, decision, Outcome.of_error(error))
            raise
        reports.put(self.kit.aclient, decision, Outcome(status="success"))
        return answer

    def _review(self, progress: ProgressFn | None) -> ReviewHook | None:
        if self.config.on_review == "refuse":
            return None  # the kit refuses; the retry finds the review by its key

        async def wait(_request: DecisionRequest, decision: Decision) -> Decision:
            return await self._wait_for_review(decision, progress)

        return wait

    async def _wait_for_review(self, decision: Decision, progress: ProgressFn | None) -> Decision:
        """Wait up to ``review_timeout`` for a reviewer, telling the client meanwhile
        that the call is alive (clients give up on requests that stay silent)."""
        outcome: Decision | GatekitError
        async with anyio.create_task_group() as group:
            if progress is not None:
                group.start_soon(self._tell_progress, decision, progress)
            try:
                outcome = await self.kit.aclient.wait_for_approval(
                    decision, self.config.review_timeout
                )
            except GatekitError as error:  # raised below, not wrapped in an ExceptionGroup
                outcome = error
            group.cancel_scope.cancel()
        if isinstance(outcome, GatekitError):
            raise outcome
        return outcome

    async def _tell_progress(self, decision: Decision, progress: ProgressFn) -> None:
        interval = self.config.review_progress_interval
        total = self.config.review_timeout
        message = f"waiting for human review (approval id {decision.approval_id})"
        waited = 0.0
        while True:
            await anyio.sleep(interval)
            waited += interval
            try:
                await progress(min(waited, total), total, message)
            except Exception as error:  # a courtesy: its failure must not end the wait
                logger.debug("gatekit: could not send review progress: %s", error)
                return

    async def _run_and_screen(
        self, name: str, run: Callable[[], Awaitable[Wire]], decision: Decision
    ) -> _Screened:
        result = await run()
        verdict = await screen(result, self.config.shields)
        if verdict.findings:
            handled = "withheld" if verdict.blocked else "recorded"
            logger.warning("gatekit: %s result of %s: %s", handled, name, verdict.summary())
        shown = _withheld(verdict, decision) if verdict.blocked else verdict.result
        return _Screened(shown, bool(result.get("isError")), verdict)
