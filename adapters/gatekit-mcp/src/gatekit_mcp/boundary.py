"""``McpToolBoundary``: the gate for hosts and routers that dispatch MCP tool calls themselves."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from gatekit import Action, AsyncClient, Client, default_client

__all__ = ["McpToolBoundary"]

R = TypeVar("R")


class McpToolBoundary:
    """Gate the tool calls a host sends to one MCP server (toolset).

        boundary = McpToolBoundary(server_name="files", toolset_id="fs-v1", client_name="my-host")
        result = await boundary.ainvoke(
            tool_name="read_file", arguments={"path": "a.txt"},
            handler=lambda args: session.call_tool("read_file", args),
            risk_level="low", operation_class="read",
        )

    ``handler(arguments)`` runs only after an allowed decision (waiting for a
    review like ``Client.guard``); otherwise the ``guard`` exceptions are
    raised (``Blocked``, ``PendingReview``, ``BackendError``, …) and the handler
    never runs. The MCP context (server, toolset, client) is recorded in the
    action's metadata under ``"mcp"``; ``systems_touched`` defaults to the
    server name. ``tools`` maps tool names to default action fields.
    """

    def __init__(
        self,
        *,
        server_name: str,
        toolset_id: str | None = None,
        client: Client | AsyncClient | None = None,
        client_name: str | None = None,
        tools: Mapping[str, Mapping[str, Any]] | None = None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> None:
        if not server_name.strip():
            raise ValueError("server_name must not be empty")
        self.server_name = server_name
        self.toolset_id = toolset_id
        self.client_name = client_name
        self.tools = {name: dict(fields) for name, fields in (tools or {}).items()}
        self.wait = wait
        self.timeout = timeout
        base = client if client is not None else default_client()
        self._sync: Client = base.as_sync()
        self._async: AsyncClient = base.as_async()

    def action(self, tool_name: str, arguments: Mapping[str, Any], **fields: Any) -> Action:
        """The Action a call becomes (handy for tests and for logging)."""
        merged: dict[str, Any] = {**self.tools.get(tool_name, {}), **fields}
        merged.setdefault("systems_touched", [self.server_name])
        context = {
            "server": self.server_name,
            "toolset": self.toolset_id,
            "client": self.client_name,
        }
        metadata = dict(merged.pop("metadata", None) or {})
        metadata["mcp"] = {k: v for k, v in context.items() if v is not None}
        return Action(tool=tool_name, arguments=dict(arguments), metadata=metadata, **merged)

    def invoke(
        self,
        *,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        handler: Callable[[dict[str, Any]], R],
        **action_fields: Any,
    ) -> R:
        """Decide, then run ``handler(arguments)`` only if allowed."""
        args = dict(arguments or {})
        action = self.action(tool_name, args, **action_fields)
        with self._sync.guard(action, wait=self.wait, timeout=self.timeout):
            return handler(args)

    async def ainvoke(
        self,
        *,
        tool_name: str,
        arguments: Mapping[str, Any] | None = None,
        handler: Callable[[dict[str, Any]], Awaitable[R] | R],
        **action_fields: Any,
    ) -> R:
        """``invoke`` for async hosts; ``handler`` may be sync or async."""
        args = dict(arguments or {})
        action = self.action(tool_name, args, **action_fields)
        async with self._async.guard(action, wait=self.wait, timeout=self.timeout):
            result = handler(args)
            if inspect.isawaitable(result):
                return await result
            return result
