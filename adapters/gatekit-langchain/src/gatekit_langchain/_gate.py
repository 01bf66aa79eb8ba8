"""The one path every LangChain entry point takes: tool call → the kit's gate → go or no-go.

Nothing here decides anything; the engine does, through ``gatekit.adapters``.
This module turns a LangChain tool call into the kit's request, adds what only
LangChain has (a pending review as a LangGraph ``interrupt()``, decisions keyed
by the tool call id so a resumed graph finds its decision again), and a refusal
arrives as the kit's ``Refused`` so each entry point (tool, middleware) can answer its
caller as it expects: an error ``ToolMessage`` the model can act on, or an exception.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, get_args

from langchain_core.messages import ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import interrupt

from gatekit import (
    AsyncClient,
    Client,
    ConfigurationError,
    Decision,
    DecisionRequest,
    GatekitError,
)
from gatekit.adapters import (
    DenialMode,
    Refused,
    ToolCallGate,
    current_run,
    digest,
    json_arguments,
)
from gatekit_langchain._review import (
    approval_id_of,
    parse_answer,
    recording_review,
    refuse_if_rejected,
    review_request,
)

__all__ = ["DenialMode", "Gate", "GatedCall", "ReviewMode", "tool_message"]

R = TypeVar("R")

ReviewMode = Literal["auto", "wait", "interrupt", "refuse"]

# LangGraph puts the graph's checkpointer under this configurable key; interrupts need one.
_CHECKPOINTER_KEY = "__pregel_checkpointer"

# Scopes tool call ids seen outside any thread or run to this process: a model that
# numbers its calls (or a replayed message) elsewhere must not find this process's
# decisions.
_PROCESS_SCOPE = secrets.token_hex(16)


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


@contextmanager
def _refusing(call: GatedCall) -> Iterator[None]:
    try:
        yield
    except GatekitError as error:
        raise Refused(call.tool, error) from error


def _refuse(_request: DecisionRequest, pending: Decision) -> Decision:
    """A review hook that leaves the call pending: it is refused, not waited for."""
    return pending


async def _arefuse(request: DecisionRequest, pending: Decision) -> Decision:
    return _refuse(request, pending)


def tool_message(refused: Refused, tool_call_id: str) -> ToolMessage:
    """The refusal as the model reads it: an error ToolMessage answering its tool call."""
    return ToolMessage(
        content=refused.refusal.message,
        tool_call_id=tool_call_id,
        name=refused.tool,
        status="error",
    )


def idempotency_key(call: GatedCall) -> str | None:
    """Same tool call in the same thread → same key → the same decision after a resume.

    Scoped by the LangGraph thread when there is one (it survives a resume; a
    gatekit run id may not), else by the gatekit run, else by this process; and by
    the arguments, so a repeated call id with other arguments is another call.
    Without a tool call id there is nothing stable to find the decision by again
    (nor with arguments JSON cannot hold: the request refuses that call anyway).
    """
    if not call.tool_call_id:
        return None
    thread = call.configurable.get("thread_id")
    run = current_run()
    if thread is not None:
        scope = f"thread:{thread}"
    elif run is not None:
        scope = f"run:{run.run_id}"
    else:
        scope = f"process:{_PROCESS_SCOPE}"
    named = {"tool": call.tool, "tool_call_id": call.tool_call_id, "scope": scope}
    try:
        key = digest({**named, "arguments": json_arguments(call.arguments)})
    except ValueError:
        return None
    return f"langchain:{key[:48]}"


class Gate:
    """Asks for a decision for each call and holds the body back unless it is allowed.

    ``on_review`` says what a pending review does: ``"wait"`` (bounded by
    ``review_timeout``, else the client's ``approval_timeout``), ``"interrupt"``
    (pause the LangGraph graph; the resume value is the reviewer's decision),
    ``"refuse"`` (refuse now), or ``"auto"``: interrupt when the call runs inside a
    graph with a checkpointer and has a tool call id, otherwise wait.
    ``on_denied`` says whether refusals become error ToolMessages or raise;
    ``tools``/``default`` are the action fields per tool and for the others.
    """

    def __init__(
        self,
        client: Client | AsyncClient | None = None,
        *,
        on_review: ReviewMode = "auto",
        review_timeout: float | None = None,
        on_denied: DenialMode = "message",
        tools: Mapping[str, Mapping[str, Any]] | None = None,
        default: Mapping[str, Any] | None = None,
    ) -> None:
        if on_review not in get_args(ReviewMode):
            raise ConfigurationError(f"on_review must be one of {get_args(ReviewMode)}")
        self.on_review: ReviewMode = on_review
        self.kit = ToolCallGate(
            client,
            on_review="refuse" if on_review == "refuse" else "wait",
            review_timeout=review_timeout,
            on_denied=on_denied,
            tools=tools,
            default=default,
        )

    @property
    def on_denied(self) -> DenialMode:
        return self.kit.on_denied

    def request(self, call: GatedCall) -> DecisionRequest:
        trace = {
            name: value
            for name, value in (
                ("tool_call_id", call.tool_call_id),
                ("thread_id", call.configurable.get("thread_id")),
            )
            if value is not None
        }
        # Prepared once: preparing spends a call of the run's limits.
        return self.kit.request(
            call.tool,
            call.arguments,
            metadata={"langchain": trace},
            idempotency_key=idempotency_key(call),
        )

    def _mode(self, call: GatedCall) -> Literal["wait", "interrupt", "refuse"]:
        if self.on_review == "auto":
            in_graph = bool(call.configurable.get(_CHECKPOINTER_KEY))
            return "interrupt" if in_graph and call.tool_call_id else "wait"
        if self.on_review == "interrupt" and not call.tool_call_id:
            return "refuse"  # a resumed node could not find this decision again
        return self.on_review

    # -- sync ----------------------------------------------------------------------

    def run(self, call: GatedCall, body: Callable[[], R]) -> R:
        """``body()`` if the call is allowed. Raises ``Refused`` when it must not run;
        lets a LangGraph interrupt through; the body's own errors pass unchanged."""
        request = self.request(call)
        mode = self._mode(call)
        if mode == "interrupt":
            with _refusing(call):
                decision = self.kit.client.decide(request)
                if decision.approval_id is not None:
                    self._review_by_interrupt(call, request, decision)
        review = _refuse if mode == "refuse" else None
        return self.kit.run(request, lambda _decision: body(), review=review)

    def _review_by_interrupt(
        self, call: GatedCall, request: DecisionRequest, pending: Decision
    ) -> None:
        """First pass: ``interrupt()`` pauses the graph. On resume it returns the answer,
        recorded as that reviewer's, even when the review was meanwhile recorded
        elsewhere: then the stored review stands, but a "reject" still wins."""
        answer = parse_answer(
            interrupt(review_request(request, pending, call.tool_call_id)), pending
        )
        record = self.kit.client.approve if answer.decision == "approve" else self.kit.client.reject
        with recording_review():
            record(approval_id_of(pending), reviewer=answer.reviewer, comment=answer.comment)
        refuse_if_rejected(answer, pending)

    # -- async ---------------------------------------------------------------------

    async def arun(self, call: GatedCall, body: Callable[[], Awaitable[R]]) -> R:
        """See ``run``."""
        request = self.request(call)
        mode = self._mode(call)
        if mode == "interrupt":
            with _refusing(call):
                decision = await self.kit.aclient.decide(request)
                if decision.approval_id is not None:
                    await self._areview_by_interrupt(call, request, decision)
        review = _arefuse if mode == "refuse" else None
        return await self.kit.arun(request, lambda _decision: body(), review=review)

    async def _areview_by_interrupt(
        self, call: GatedCall, request: DecisionRequest, pending: Decision
    ) -> None:
        answer = parse_answer(
            interrupt(review_request(request, pending, call.tool_call_id)), pending
        )
        client = self.kit.aclient
        record = client.approve if answer.decision == "approve" else client.reject
        with recording_review():
            await record(approval_id_of(pending), reviewer=answer.reviewer, comment=answer.comment)
        refuse_if_rejected(answer, pending)
