"""The gating proxy: an MCP server that fronts an upstream MCP server.

``Forwarder`` relays every request unchanged (resources, prompts, tools);
``GatingProxy`` adds the gate on ``tools/call``, the policy filter and the
pins on ``tools/list``. Both speak wire JSON through ``_compat``, so the same
code serves mcp 1.x and 2.x.
"""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

from gatekit import AsyncClient
from gatekit_mcp._compat import (
    Handlers,
    ToolCall,
    Upstream,
    Wire,
    build_server,
    connect,
    paginated,
    progress_callback,
    serve_http,
    serve_stdio,
    to_wire,
)
from gatekit_mcp.config import ProxyConfig
from gatekit_mcp.gate import ToolGate
from gatekit_mcp.pins import PinStatus, PinStore, tool_digest

__all__ = ["Forwarder", "GatingProxy", "run_proxy"]

logger = logging.getLogger("gatekit_mcp")


class Forwarder:
    """Relays every request to the upstream server unchanged (no governance)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.session = upstream.session

    def handlers(self) -> Handlers:
        serves = self.upstream.serves
        return Handlers(
            call_tool=self.call_tool,
            list_tools=self.list_tools,
            list_resources=self.list_resources if serves("resources") else None,
            list_resource_templates=self.list_resource_templates if serves("resources") else None,
            read_resource=self.read_resource if serves("resources") else None,
            list_prompts=self.list_prompts if serves("prompts") else None,
            get_prompt=self.get_prompt if serves("prompts") else None,
        )

    def server(self) -> Any:
        upstream = self.upstream
        return build_server(upstream.name, upstream.version, upstream.instructions, self.handlers())

    async def call_tool(self, call: ToolCall) -> Wire:
        return await self._call_upstream(call)

    async def _call_upstream(self, call: ToolCall) -> Wire:
        result = await self.session.call_tool(
            call.name, call.arguments, progress_callback=progress_callback(call.progress)
        )
        return to_wire(result)

    async def list_tools(self, params: Wire) -> Wire:
        return to_wire(await self.session.list_tools(params=paginated(params)))

    async def list_resources(self, params: Wire) -> Wire:
        return to_wire(await self.session.list_resources(params=paginated(params)))

    async def list_resource_templates(self, params: Wire) -> Wire:
        return to_wire(await self.session.list_resource_templates(params=paginated(params)))

    async def read_resource(self, params: Wire) -> Wire:
        return to_wire(await self.session.read_resource(params["uri"]))

    async def list_prompts(self, params: Wire) -> Wire:
        return to_wire(await self.session.list_prompts(params=paginated(params)))

    async def get_prompt(self, params: Wire) -> Wire:
        return to_wire(await self.session.get_prompt(params["name"], params.get("arguments")))


class GatingProxy(Forwarder):
    """Forwards everything, and governs tools: gate, list filter, pins, result shields."""

    def __init__(
        self,
        upstream: Upstream,
        client: AsyncClient,
        config: ProxyConfig | None = None,
        pins: PinStore | None = None,
    ) -> None:
        super().__init__(upstream)
        self.config = config or ProxyConfig()
        self.gate = ToolGate(client, self.config, server_name=upstream.name)
        self.pins = pins if self.config.pins.enabled else None
        # The definitions the client was last shown (wire form), with their digests.
        self._tools: dict[str, tuple[Wire, str]] = {}

    @property
    def server_name(self) -> str:
        return self.gate.server_name

    async def list_tools(self, params: Wire) -> Wire:
        result = await super().list_tools(params)
        shown = [tool for tool in result.get("tools", []) if await self._show(tool)]
        return {**result, "tools": shown}

    async def _show(self, tool: Wire) -> bool:
        name = str(tool["name"])
        digest = tool_digest(tool)
        self._tools[name] = (tool, digest)
        pin = self._pin(tool, digest)
        if pin is not None and pin.changed and self.config.pins.block_changed:
            return False  # its changed description must not reach the model
        return not (self.config.hide_blocked_tools and await self.gate.always_blocked(name))

    def _pin(self, tool: Wire, digest: str) -> PinStatus | None:
        if self.pins is None:
            return None
        status = self.pins.check(self.server_name, tool, digest)
        if status.changed:
            logger.warning(
                "gatekit: the definition of tool %r on %r changed since it was pinned "
                "(%s -> %s); %s. Approve with: gatekit-mcp pins approve %s",
                tool["name"],
                self.server_name,
                status.pinned[:12],
                status.current[:12],
                "it is blocked" if self.config.pins.block_changed else "calls are flagged",
                tool["name"],
            )
        return status

    async def _definition(self, name: str) -> tuple[Wire, str] | None:
        if name not in self._tools:  # called before (or without) listing: look it up
            cursor: str | None = None
            while True:
                page = await Forwarder.list_tools(self, {"cursor": cursor} if cursor else {})
                for tool in page.get("tools", []):
                    self._tools[str(tool["name"])] = (tool, tool_digest(tool))
                cursor = page.get("nextCursor")
                if not cursor or name in self._tools:
                    break
        return self._tools.get(name)

    async def call_tool(self, call: ToolCall) -> Wire:
        definition = await self._definition(call.name)
        pin = self._pin(*definition) if definition is not None else None
        return await self.gate.call(call, lambda: self._call_upstream(call), pin=pin)


async def run_proxy(
    transport: AbstractAsyncContextManager[tuple[Any, Any]],
    client: AsyncClient,
    config: ProxyConfig,
    pins: PinStore | None,
    *,
    serve: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
) -> None:
    """Connect to the upstream, then serve the gating proxy until the client leaves."""
    async with connect(transport) as upstream:
        server = GatingProxy(upstream, client, config, pins).server()
        if serve == "http":
            await serve_http(server, host, port, path)
        else:
            await serve_stdio(server)
