"""``GatekitMiddleware``: a decision in front of every tool call of a ``create_agent`` agent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from langchain.agents.middleware import AgentMiddleware, ToolCallRequest
from langchain_core.messages import ToolMessage
from langgraph.types import Command

from gatekit import AsyncClient, Client
from gatekit.adapters import Refused
from gatekit_langchain._gate import DenialMode, Gate, GatedCall, ReviewMode, tool_message
from gatekit_langchain._tool import GatedTool

__all__ = ["GatekitMiddleware"]

ToolResult = ToolMessage | Command[Any]


class GatekitMiddleware(AgentMiddleware):
    """Gate every tool call of an agent built with ``langchain.agents.create_agent``.

    ``tools`` maps a tool name to its action fields (risk_level, operation_class,
    data_sensitivity, systems_touched, …); a tool not in it gets ``default``.
    A refused call reaches the model as an error ``ToolMessage`` with the reason
    (``on_denied="raise"`` raises the gatekit error instead). A pending review
    waits, or — inside a graph with a checkpointer — pauses the agent with
    ``interrupt()`` until ``Command(resume=approve(...)|reject(...))``.

    Put it last in ``middleware=[...]`` (innermost), so it sees the arguments
    the tool will really get. Tools already wrapped by ``secure_langchain_tool``
    gate themselves and are passed through, never decided twice.
    """

    def __init__(
        self,
        client: Client | AsyncClient | None = None,
        *,
        tools: Mapping[str, Mapping[str, Any]] | None = None,
        default: Mapping[str, Any] | None = None,
        on_review: ReviewMode = "auto",
        review_timeout: float | None = None,
        on_denied: DenialMode = "message",
    ) -> None:
        super().__init__()
        self.gate = Gate(
            client,
            on_review=on_review,
            review_timeout=review_timeout,
            on_denied=on_denied,
            tools=tools,
            default=default,
        )

    @staticmethod
    def _gates_itself(request: ToolCallRequest) -> bool:
        # Only a gated tool decides alone. A call with no registered tool is decided
        # too: a middleware further in may serve it without ToolNode's checks.
        return isinstance(request.tool, GatedTool)

    @staticmethod
    def _call(request: ToolCallRequest) -> GatedCall:
        tool_call = request.tool_call
        runtime = getattr(request, "runtime", None)
        return GatedCall(
            tool=tool_call["name"],
            arguments=dict(tool_call.get("args") or {}),
            tool_call_id=tool_call.get("id"),
            config=getattr(runtime, "config", None),
        )

    def _refusal(self, refused: Refused, call: GatedCall) -> ToolMessage:
        if self.gate.on_denied == "raise" or not call.tool_call_id:
            raise refused.error
        return tool_message(refused, call.tool_call_id)

    def wrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], ToolResult],
    ) -> ToolResult:
        if self._gates_itself(request):
            return handler(request)
        call = self._call(request)
        try:
            return self.gate.run(call, lambda: handler(request))
        except Refused as refused:
            return self._refusal(refused, call)

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolResult]],
    ) -> ToolResult:
        if self._gates_itself(request):
            return await handler(request)
        call = self._call(request)
        try:
            return await self.gate.arun(call, lambda: handler(request))
        except Refused as refused:
            return self._refusal(refused, call)
