"""What the gating proxy does with the requests it governs.

``Forwarder`` passes them to the upstream unchanged; ``GatingProxy`` governs:
``tools/call`` through the gate (only exact, listed tool names; pins checked),
``tools/list`` filtered by policy and pins, the result shields on tool
results, ``resources/read`` and ``prompts/get``, and the injection shield on
what the upstream says about itself (``descriptions.py``: its instructions,
and the descriptions in the tools, prompts, resources and resource templates it
lists). Everything else a client and the upstream say to each other is relayed
by the session (``session.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from gatekit import AsyncClient, Check, CheckOutcome
from gatekit.adapters import Refused
from gatekit_mcp._compat import ToolCall, Wire
from gatekit_mcp.config import GATED_UPSTREAM_REQUESTS, ProxyConfig
from gatekit_mcp.contents import (
    prompt_as_result,
    prompt_from_result,
    resource_as_result,
    resource_from_result,
)
from gatekit_mcp.descriptions import shield_instructions, shield_listing
from gatekit_mcp.gate import ToolGate, error_result, scanned, screen
from gatekit_mcp.jsonrpc import RpcError
from gatekit_mcp.pins import PinStatus, PinStore, tool_digest
from gatekit_mcp.upstream import Upstream

__all__ = [
    "REFUSED",
    "UNLISTED_CHECK",
    "WITHHELD",
    "ClientRequest",
    "Forwarder",
    "GatingProxy",
]

logger = logging.getLogger("gatekit_mcp")

UNLISTED_CHECK = "mcp.tool_not_listed"

WITHHELD = -32010
"""JSON-RPC error code of a resource or prompt the result shields withheld."""

REFUSED = -32012
"""JSON-RPC error code the upstream gets for a request to the client that gatekit
did not relay (``upstream_requests: gate``)."""

ClientRequest = Callable[[], Awaitable[Wire]]
"""Relays one of the upstream's requests to the client; the client's answer."""


class Forwarder:
    """Passes the governed requests to the upstream unchanged (no governance)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream

    async def list_tools(self, params: Wire) -> Wire:
        return await self.upstream.request("tools/list", params or None)

    async def call_tool(self, call: ToolCall) -> Wire:
        return await self._call_upstream(call)

    async def _call_upstream(self, call: ToolCall) -> Wire:
        return await self.upstream.request("tools/call", call.upstream_params())

    async def introduce(self, initialized: Wire) -> Wire:
        """The upstream's ``initialize`` answer, as the client is to read it."""
        return initialized

    async def list_items(self, method: str, params: Wire) -> Wire:
        """``prompts/list``, ``resources/list`` or ``resources/templates/list``."""
        return await self.upstream.request(method, params or None)

    async def read_resource(self, params: Wire) -> Wire:
        return await self.upstream.request("resources/read", params)

    async def get_prompt(self, params: Wire) -> Wire:
        return await self.upstream.request("prompts/get", params)

    async def tools_changed(self) -> None:
        """The upstream said its tools changed (``notifications/tools/list_changed``)."""

    async def client_request(self, asked: ToolCall, relay: ClientRequest) -> Wire:
        """One of the upstream's requests to the client: ``asked.name`` is its
        method, ``asked.arguments`` its params (less ``_meta``), ``asked.client_name``
        the client asked. ``relay()`` passes it on and returns the client's answer."""
        if asked.name != "ping":
            logger.warning("gatekit: %s asks the client for %s (relayed)", self.server, asked.name)
        return await relay()

    @property
    def server(self) -> str:
        return str(self.upstream.name)


class _ToolIndex:
    """The upstream's tool definitions as last listed, with their digests.

    Filled from the client's own listings and, when a call names a tool not seen
    yet, from a walk over every page; emptied when the upstream says its tools
    changed. ``complete`` says a whole listing was seen since."""

    def __init__(self) -> None:
        self.tools: dict[str, tuple[Wire, str]] = {}
        self.complete = False

    def reset(self) -> None:
        self.tools, self.complete = {}, False

    def add(self, tools: list[Wire]) -> None:
        for tool in tools:
            self.tools[str(tool["name"])] = (tool, tool_digest(tool))


def _tools_of(page: Wire) -> list[Wire]:
    tools = page.get("tools")
    listed = tools if isinstance(tools, list) else []
    return [tool for tool in listed if isinstance(tool, dict) and isinstance(tool.get("name"), str)]


class GatingProxy(Forwarder):
    """Forwards, and governs tools: gate, list filter, pins, result shields."""

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
        self._index = _ToolIndex()
        self._pages_read = 0  # pages of the client's current listing

    @property
    def server_name(self) -> str:
        return self.gate.server_name

    @property
    def server(self) -> str:
        return self.server_name

    # -- the upstream's requests to the client -------------------------------------------

    async def client_request(self, asked: ToolCall, relay: ClientRequest) -> Wire:
        gated = self.config.upstream_requests == "gate"
        if not gated or asked.name not in GATED_UPSTREAM_REQUESTS:
            return await super().client_request(asked, relay)
        try:
            return await self.gate.relay(asked, relay)
        except Refused as refused:  # it never reached the client
            refusal = self.gate.kit.refusal(refused)
            logger.warning("gatekit: %s not relayed: %s", asked.name, refusal.message)
            data = error_result(refusal.message, refusal.decision).get("_meta")
            raise RpcError(REFUSED, refusal.message, data) from None

    # -- tools/list ------------------------------------------------------------------

    async def list_tools(self, params: Wire) -> Wire:
        first = not params.get("cursor")
        result = await super().list_tools(params)
        tools = _tools_of(result)
        if first:
            self._index.reset()
            self._pages_read = 0
        self._index.add(tools)
        self._pages_read += 1
        result = self._bounded(result)
        if first and not result.get("nextCursor"):
            self._index.complete = True
        shown = [tool for tool in tools if await self._show(tool)]
        return await self._described("tools/list", {**result, "tools": shown})

    async def _described(self, method: str, page: Wire) -> Wire:
        """``page`` with its items' descriptions through the injection shield."""
        return await scanned(
            partial(shield_listing, method, mode=self.config.shields.injection), page
        )

    def _bounded(self, page: Wire) -> Wire:
        if page.get("nextCursor") and self._pages_read >= self.config.max_list_pages:
            logger.warning(
                "gatekit: %s listed more than %d pages of tools; the list is cut there "
                "(max_list_pages)",
                self.server_name,
                self.config.max_list_pages,
            )
            return {key: value for key, value in page.items() if key != "nextCursor"}
        return page

    async def _show(self, tool: Wire) -> bool:
        name = str(tool["name"])
        pin = self._pin(*self._index.tools[name])
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

    async def _walk(self, seen: Callable[[Wire, str], Any] | None = None) -> None:
        """Read every page of the upstream's tools into the index (bounded)."""
        self._index.reset()
        cursor: str | None = None
        cursors: set[str] = set()
        for _page in range(self.config.max_list_pages):
            page = await Forwarder.list_tools(self, {"cursor": cursor} if cursor else {})
            tools = _tools_of(page)
            self._index.add(tools)
            if seen is not None:
                for tool in tools:
                    seen(*self._index.tools[str(tool["name"])])
            next_cursor = page.get("nextCursor")
            if not isinstance(next_cursor, str) or not next_cursor or next_cursor in cursors:
                self._index.complete = True
                return
            cursors.add(next_cursor)
            cursor = next_cursor
        logger.warning(
            "gatekit: %s listed more than %d pages of tools; the rest is not read (max_list_pages)",
            self.server_name,
            self.config.max_list_pages,
        )
        self._index.complete = True

    async def tools_changed(self) -> None:
        """Read the new list at once: the pins see each changed definition now, so it
        is flagged (and blocked) before the model lists or calls it."""
        await self._walk(self._pin)

    # -- tools/call ------------------------------------------------------------------

    async def _definition(self, name: str) -> tuple[Wire, str] | None:
        if name not in self._index.tools and not self._index.complete:
            await self._walk()  # called before (or without) a whole listing
        return self._index.tools.get(name)

    async def call_tool(self, call: ToolCall) -> Wire:
        checks: list[Check] = []
        definition = await self._definition(call.name)
        if definition is None and not self.config.allow_unlisted_tools:
            detail = f"{call.name!r} is not among the tools {self.server_name} lists"
            checks.append(Check(name=UNLISTED_CHECK, outcome=CheckOutcome.BLOCK, detail=detail))
        pin = self._pin(*definition) if definition is not None else None
        return await self.gate.call(call, lambda: self._call_upstream(call), pin=pin, checks=checks)

    # -- what the upstream says about itself ----------------------------------------------

    async def introduce(self, initialized: Wire) -> Wire:
        mode = self.config.shields.injection
        return await scanned(partial(shield_instructions, mode=mode), initialized)

    async def list_items(self, method: str, params: Wire) -> Wire:
        return await self._described(method, await super().list_items(method, params))

    # -- resources and prompts ---------------------------------------------------------

    async def read_resource(self, params: Wire) -> Wire:
        read = await super().read_resource(params)
        shown = await self._shielded(resource_as_result(read), f"resource {params.get('uri')!r}")
        return resource_from_result(read, shown)

    async def get_prompt(self, params: Wire) -> Wire:
        prompt = await super().get_prompt(params)
        shown = await self._shielded(prompt_as_result(prompt), f"prompt {params.get('name')!r}")
        return prompt_from_result(prompt, shown)

    async def _shielded(self, result: Wire, what: str) -> Wire:
        verdict = await screen(result, self.config.shields)
        if not verdict.findings:
            return result
        handled = "withheld" if verdict.blocked else "recorded"
        logger.warning("gatekit: %s %s: %s", handled, what, verdict.summary())
        if verdict.blocked:
            kinds = ", ".join(sorted({f"{f.kind} ({f.detector})" for f in verdict.blocked_by}))
            raise RpcError(WITHHELD, f"gatekit withheld this {what}: it contained {kinds}")
        return verdict.result
