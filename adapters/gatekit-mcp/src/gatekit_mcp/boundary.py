"""``McpToolBoundary``: the gate for hosts and routers that dispatch MCP tool calls themselves."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from gatekit import AsyncClient, Client, Decision, DecisionRequest
from gatekit.adapters import DenialMode, Refused, ReviewMode, ToolCallGate
from gatekit_mcp._compat import CallToolResult, call_tool_result
from gatekit_mcp.gate import mcp_metadata, refusal_result, review_key

__all__ = ["McpToolBoundary"]

R = TypeVar("R")


class McpToolBoundary:
    """Gate the tool calls a host sends to one MCP server (toolset).

        boundary = McpToolBoundary(server_name="files", toolset_id="fs-v1", client_name="my-host",
                                   tools={"read_file": {"risk_level": "low"}})
        result = await boundary.ainvoke(
            tool_name="read_file", arguments={"path": "a.txt"},
            handler=lambda args: session.call_tool("read_file", args),
        )

    ``handler(arguments)`` runs only after an allowed decision. The options mean
    what they mean in every gatekit adapter (``gatekit.adapters``): ``tools`` /
    ``default`` are action fields per tool name and for every other tool
    (``systems_touched`` defaults to the server name); ``on_review`` is
    ``"wait"`` (up to ``review_timeout`` seconds) or ``"refuse"``; ``on_denied``
    is ``"raise"`` (the default for a host: ``Blocked``, ``PendingReview``,
    ``BackendError``, …) or ``"message"`` (an ``isError`` ``CallToolResult`` whose
    text is the refusal, for the host to hand to the model). The MCP context
    (server, toolset, client) is recorded in the action's metadata under ``"mcp"``.

    A call left waiting for review can simply be retried: the same call from the
    same ``client_name`` finds its review (approved by now, perhaps) in the engine.
    """

    def __init__(
        self,
        *,
        server_name: str,
        toolset_id: str | None = None,
        client: Client | AsyncClient | None = None,
        client_name: str | None = None,
        tools: Mapping[str, Mapping[str, Any]] | None = None,
        default: Mapping[str, Any] | None = None,
        on_review: ReviewMode = "wait",
        review_timeout: float | None = None,
        on_denied: DenialMode = "raise",
    ) -> None:
        if not server_name.strip():
            raise ValueError("server_name must not be empty")
        self.server_name = server_name
        self.toolset_id = toolset_id
        self.client_name = client_name
        self._client = client
        self.kit = ToolCallGate(
            client,
            on_review=on_review,
            review_timeout=review_timeout,
            on_denied=on_denied,
            tools={name: self._on_this_server(fields) for name, fields in (tools or {}).items()},
            default=self._on_this_server(default or {}),
        )

    def _on_this_server(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        # Unless told otherwise, the system a tool call touches is the server it goes to.
        return {"systems_touched": [self.server_name], **fields}

    def _gate_for(self, tool_name: str, call_fields: Mapping[str, Any]) -> ToolCallGate:
        """The kit's gate, or for a call with its own action fields, one with those
        fields over the tool's (validated like any tool's fields)."""
        if not call_fields:
            return self.kit
        return ToolCallGate(
            self._client,
            on_review=self.kit.on_review,
            review_timeout=self.kit.review_timeout,
            on_denied=self.kit.on_denied,
            tools={tool_name: {**self.kit.fields_for(tool_name), **call_fields}},
        )

    def _request(
        self, gate: ToolCallGate, tool_name: str, arguments: dict[str, Any]
    ) -> DecisionRequest:
        metadata = mcp_metadata(self.server_name, self.toolset_id, self.client_name)
        key = review_key(
            server=self.server_name,
            tool=tool_name,
            arguments=arguments,
            fields=gate.fields_for(tool_name),
            client_name=self.client_name,
            session_id=None,
        )
        return gate.request(tool_name, arguments, metadata=metadata, review_key=key)

    @staticmethod
    def _refused(gate: ToolCallGate, refused: Refused) -> CallToolResult:
        """Raise the error (``on_denied="raise"``), or the refusal as an ``isError`` result."""
        return call_tool_result(refusal_result(gate.refusal(refused)))

    def invoke(
        self,
        *,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        handler: Callable[[dict[str, Any]], R],
        **action_fields: Any,
    ) -> R | CallToolResult:
        """Decide, then run ``handler(arguments)`` only if allowed. ``action_fields``
        are this call's action fields, over the tool's."""
        args = dict(arguments or {})
        gate = self._gate_for(tool_name, action_fields)
        try:
            return gate.run(self._request(gate, tool_name, args), lambda _d: handler(args))
        except Refused as refused:  # the handler did not run; its own errors pass
            return self._refused(gate, refused)

    async def ainvoke(
        self,
        *,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        handler: Callable[[dict[str, Any]], Awaitable[R] | R],
        **action_fields: Any,
    ) -> R | CallToolResult:
        """``invoke`` for async hosts; ``handler`` may be sync or async."""
        args = dict(arguments or {})
        gate = self._gate_for(tool_name, action_fields)

        async def body(_decision: Decision) -> R:
            result = handler(args)
            if inspect.isawaitable(result):
                return await result
            return result

        try:
            return await gate.arun(self._request(gate, tool_name, args), body)
        except Refused as refused:  # the handler did not run; its own errors pass
            return self._refused(gate, refused)
