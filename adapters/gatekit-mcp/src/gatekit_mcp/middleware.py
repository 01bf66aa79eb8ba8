"""The gate inside your own MCP server (mcp 2.x ``Server.middleware``).

    from mcp.server.mcpserver import MCPServer
    from gatekit_mcp.middleware import GatekitMiddleware

    server = MCPServer("files")
    config = ProxyConfig.load("tools.yaml")
    server.middleware.append(GatekitMiddleware(server_name="files", config=config))

Every ``tools/call`` is decided before the tool handler runs (a denial is a
``CallToolResult`` with ``isError`` and the reason); results pass the result
shields; ``tools/list`` hides tools a dry run (``client.preview``) shows blocked
whatever their arguments. mcp 1.x has no
server middleware: importing this module there raises ImportError.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from gatekit_mcp._compat import MCP2, MCP_VERSION

if not MCP2:
    raise ImportError(
        "gatekit_mcp.middleware needs mcp 2.x (Server.middleware); mcp "
        f"{MCP_VERSION[0]}.{MCP_VERSION[1]} is installed. On mcp 1.x, put the gating proxy "
        "(gatekit-mcp proxy) in front of your server, or gate calls with McpToolBoundary."
    )

from gatekit import AsyncClient
from gatekit_mcp._compat import Wire, call_tool_result, to_wire, tool_call
from gatekit_mcp.config import ProxyConfig
from gatekit_mcp.gate import ToolGate

__all__ = ["GatekitMiddleware"]

CallNext = Callable[[Any], Awaitable[Any]]


class GatekitMiddleware:
    """An mcp 2.x ``ServerMiddleware`` that gates ``tools/call`` and filters ``tools/list``."""

    def __init__(
        self,
        client: AsyncClient | None = None,
        *,
        server_name: str,
        toolset: str | None = None,
        config: ProxyConfig | None = None,
    ) -> None:
        self.gate = ToolGate(
            client or AsyncClient(),
            config or ProxyConfig(),
            server_name=server_name,
            toolset=toolset,
        )

    async def __call__(self, ctx: Any, call_next: CallNext) -> Any:
        if ctx.request_id is None:  # a notification: nothing to govern
            return await call_next(ctx)
        if ctx.method == "tools/call":
            return await self._call_tool(ctx, call_next)
        if ctx.method == "tools/list" and self.gate.config.hide_blocked_tools:
            return await self._filtered(to_wire(await call_next(ctx)))
        return await call_next(ctx)

    async def _call_tool(self, ctx: Any, call_next: CallNext) -> Any:
        params: Mapping[str, Any] = ctx.params or {}
        call = tool_call(ctx, str(params.get("name", "")), params.get("arguments"))

        async def run() -> Wire:
            return to_wire(await call_next(ctx))

        return call_tool_result(await self.gate.call(call, run))

    async def _filtered(self, result: Wire) -> Wire:
        tools = [
            tool
            for tool in result.get("tools", [])
            if not await self.gate.always_blocked(str(tool["name"]))
        ]
        return {**result, "tools": tools}
