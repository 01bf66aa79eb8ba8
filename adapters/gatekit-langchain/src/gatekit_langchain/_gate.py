"""The one path every LangChain entry point takes: tool call → Action → Decision → go or no-go.

Nothing here decides anything; the engine does. This module builds the
Action, asks the client, and turns a pending review into a bounded wait, a
LangGraph ``interrupt()`` or a refusal. A refusal is raised as ``GateDenied``
so that each entry point (tool, middleware) can turn it into what its caller
expects: an error ``ToolMessage`` the model can act on, or an exception.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass
from typing import Any, Literal, get_args

import anyio
from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt
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
    ConfigurationError,
    Decision,
    DecisionRequest,
    GatekitError,
    PendingReview,
    RateLimited,
    Rejected,
    ValidationError,
    default_client,
)
from gatekit._context import current_run
from gatekit_langchain._review import (
    ReviewAnswer,
    approval_id_of,
    parse_answer,
    recording_review,
    refuse_if_rejected,
    review_method,
    review_request,
)

__all__ = [
    "DenialMode",
    "Gate",
    "GateDenied",
    "GatedCall",
    "ReviewMode",
    "denial_message",
    "validate_fields",
]

ReviewMode = Literal["auto", "wait", "interrupt", "deny"]
DenialMode = Literal["message", "raise"]

# Action fields the adapter fills from the call itself; users set the governance ones.
_ADAPTER_FIELDS = frozenset({"tool", "arguments", "idempotency_key"})

# LangGraph puts the graph's checkpointer under this configurable key; interrupts need one.
_CHECKPOINTER_KEY = "__pregel_checkpointer"


def validate_fields(tool: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check action fields once, when a tool or middleware is set up, not at the first call."""
    clash = sorted(_ADAPTER_FIELDS & fields.keys())
    if clash:
        raise ValidationError(
            f"{', '.join(clash)} cannot be set: the adapter takes them from each tool call",
            field=clash[0],
        )
    Action(tool=tool, **fields)
    return dict(fields)


@dataclass(frozen=True, slots=True)
class GatedCall:
    """One tool call as the gate sees it: model-facing arguments only, no injected values."""

    tool: str
    arguments: Mapping[str, Any]
    tool_call_id: str | None = None
    config: RunnableConfig | None = None

    @property
    def configurable(self) -> Mapping[str, Any]:
        return (self.config or {}).get("configurable") or {}


class GateDenied(Exception):
    """The gate refused a call; ``error`` is the gatekit exception saying why."""

    def __init__(self, error: GatekitError, tool: str) -> None:
        self.error = error
        self.tool = tool
        super().__init__(denial_message(tool, error))

    def tool_message(self, tool_call_id: str) -> ToolMessage:
        return ToolMessage(
            content=str(self), tool_call_id=tool_call_id, name=self.tool, status="error"
        )


def denial_message(tool: str, error: GatekitError) -> str:
    """What the model reads when a call was refused: enough to explain it or change course."""
    reason = getattr(error, "reason", str(error))
    detail: str
    if isinstance(error, RateLimited):
        retry = f"; retry after {error.retry_after:g} s" if error.retry_after else ""
        detail = f"rate limited: {reason}{retry}"
    elif isinstance(error, Blocked):
        detail = f"blocked by policy: {reason}"
    elif isinstance(error, Rejected):
        detail = f"a human reviewer rejected it: {reason}"
    elif isinstance(error, PendingReview):
        detail = f"it needs human review first (approval {error.approval_id}): {reason}"
    elif isinstance(error, ApprovalTimeout):
        detail = f"no reviewer decided in time: {reason}"
    elif isinstance(error, ApprovalExpired):
        detail = f"its approval expired: {reason}"
    elif isinstance(error, ApprovalConsumed):
        detail = f"this call was already decided and its decision used once: {reason}"
    elif isinstance(error, BackendError):
        detail = "no governance decision could be obtained, so it was refused (fail closed)"
    else:
        detail = f"gatekit refused it: {error}"
    return f"The call to tool {tool!r} was not run: {detail}"


def idempotency_key(call: GatedCall) -> str | None:
    """Same tool call in the same thread → same key → the same decision after a resume.

    Scoped by the LangGraph thread when there is one (it survives a resume; a
    gatekit run id may not), else by the gatekit run. Without a tool call id
    there is nothing stable to find the decision by again.
    """
    if not call.tool_call_id:
        return None
    thread = call.configurable.get("thread_id")
    run = current_run()
    scope = {
        "tool": call.tool,
        "tool_call_id": call.tool_call_id,
        "thread_id": thread,
        "run_id": run.run_id if thread is None and run is not None else None,
    }
    digest = hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()
    return f"langchain:{digest[:48]}"


class Gate:
    """Asks for a decision for each call and holds the body back unless it is allowed.

    ``on_review`` says what a pending review does: ``"wait"`` (bounded by
    ``review_timeout``, else the client's ``approval_timeout``), ``"interrupt"``
    (pause the LangGraph graph; the resume value is the reviewer's decision),
    ``"deny"`` (refuse now), or ``"auto"``: interrupt when the call runs inside a
    graph with a checkpointer and has a tool call id, otherwise wait.
    ``on_denied`` says whether refusals become error ToolMessages or raise.
    """

    def __init__(
        self,
        client: Client | AsyncClient | None = None,
        *,
        on_review: ReviewMode = "auto",
        review_timeout: float | None = None,
        on_denied: DenialMode = "message",
    ) -> None:
        if client is not None and not isinstance(client, Client | AsyncClient):
            raise ConfigurationError(
                f"client must be a gatekit Client or AsyncClient, got {type(client).__name__}"
            )
        if on_review not in get_args(ReviewMode):
            raise ConfigurationError(f"on_review must be one of {get_args(ReviewMode)}")
        if on_denied not in get_args(DenialMode):
            raise ConfigurationError(f"on_denied must be one of {get_args(DenialMode)}")
        if review_timeout is not None and review_timeout <= 0:
            raise ConfigurationError("review_timeout must be positive")
        self._given_client = client
        self.on_review: ReviewMode = on_review
        self.review_timeout = review_timeout
        self.on_denied: DenialMode = on_denied

    # The default client is resolved at the first call, so decorating at import
    # time does not build an engine.
    @functools.cached_property
    def client(self) -> Client:
        return (self._given_client or default_client()).as_sync()

    @functools.cached_property
    def aclient(self) -> AsyncClient:
        return (self._given_client or default_client()).as_async()

    # -- building the request --------------------------------------------------------

    def request(self, call: GatedCall, fields: Mapping[str, Any]) -> DecisionRequest:
        trace = {
            name: value
            for name, value in (
                ("tool_call_id", call.tool_call_id),
                ("thread_id", call.configurable.get("thread_id")),
            )
            if value is not None
        }
        metadata = {**fields.get("metadata", {}), "langchain": to_jsonable_python(trace)}
        real = Action(
            **{**fields, "metadata": metadata},
            tool=call.tool,
            arguments=to_jsonable_python(dict(call.arguments), fallback=repr),
            idempotency_key=idempotency_key(call),
        )
        return self.client.prepare(real)

    def _mode(self, call: GatedCall) -> Literal["wait", "interrupt", "deny"]:
        if self.on_review == "auto":
            in_graph = bool(call.configurable.get(_CHECKPOINTER_KEY))
            return "interrupt" if in_graph and call.tool_call_id else "wait"
        if self.on_review == "interrupt" and not call.tool_call_id:
            return "deny"  # a resumed node could not find this decision again
        return self.on_review

    # -- sync ----------------------------------------------------------------------

    def enter(self, stack: ExitStack, call: GatedCall, fields: Mapping[str, Any]) -> Decision:
        """Authorize ``call``; the caller runs the tool inside ``stack``, which reports after.

        Raises GateDenied when the call must not run; lets a LangGraph interrupt through.
        """
        try:
            request = self.request(call, fields)
            mode = self._mode(call)
            if mode == "interrupt":
                # Keyed by the tool call: a resumed node finds the same decision again.
                decision = self.client.decide(request)
                if decision.approval_id is not None:
                    self._review_by_interrupt(call, request, decision)
            guarded = self.client.guard(request, wait=mode == "wait", timeout=self.review_timeout)
            return stack.enter_context(guarded)
        except GatekitError as error:
            raise GateDenied(error, call.tool) from error

    def _ask_reviewer(
        self, call: GatedCall, request: DecisionRequest, pending: Decision
    ) -> tuple[ReviewAnswer, Callable[[], Decision]]:
        """The human's answer, through the graph, and how to record it as theirs.

        First pass: ``interrupt()`` pauses the graph. On resume it returns the
        answer, even when the review was meanwhile recorded elsewhere: then the
        stored review stands, but a "reject" in the resume value still wins.
        """
        answer = parse_answer(
            interrupt(review_request(request, pending, call.tool_call_id)), pending
        )
        record = functools.partial(
            review_method(self.client.backend, answer),
            approval_id_of(pending),
            reviewer=answer.reviewer,
            comment=answer.comment,
        )
        return answer, record

    def _review_by_interrupt(
        self, call: GatedCall, request: DecisionRequest, pending: Decision
    ) -> None:
        answer, record = self._ask_reviewer(call, request, pending)
        with recording_review():
            record()
        refuse_if_rejected(answer, pending)

    # -- async ---------------------------------------------------------------------

    async def aenter(
        self, stack: AsyncExitStack, call: GatedCall, fields: Mapping[str, Any]
    ) -> Decision:
        """See ``enter``."""
        try:
            request = self.request(call, fields)
            mode = self._mode(call)
            if mode == "interrupt":
                decision = await self.aclient.decide(request)
                if decision.approval_id is not None:
                    await self._areview_by_interrupt(call, request, decision)
            guarded = self.aclient.guard(request, wait=mode == "wait", timeout=self.review_timeout)
            return await stack.enter_async_context(guarded)
        except GatekitError as error:
            raise GateDenied(error, call.tool) from error

    async def _areview_by_interrupt(
        self, call: GatedCall, request: DecisionRequest, pending: Decision
    ) -> None:
        answer, record = self._ask_reviewer(call, request, pending)
        with recording_review():
            # ReviewBackend is sync-only; keep a remote backend off the event loop.
            await anyio.to_thread.run_sync(record)
        refuse_if_rejected(answer, pending)
