"""The upstream MCP server, as the proxy's client end sees it once initialized.

``initialize`` runs the MCP handshake over a ``Peer`` with the parameters the
real client sent (its capabilities, so the upstream may ask it for sampling,
elicitation or roots, and its clientInfo), offering at most a protocol version
this proxy understands. ``connect`` opens a transport and does the same on the
proxy's own behalf, for callers without a client (tests, embedding).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from typing import Any

import anyio

from gatekit_mcp._compat import HANDSHAKE_VERSIONS, LATEST_VERSION, Streams, Wire, to_upstream
from gatekit_mcp.jsonrpc import (
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    REQUEST_TIMEOUT,
    Inbound,
    Peer,
    RequestId,
    RpcError,
)

__all__ = ["UPSTREAM", "Upstream", "connect", "initialize", "offered_version"]

UPSTREAM = "the upstream MCP server"

# Client capabilities the upstream is not told about: with ``tasks`` it could run
# sampling or elicitation as tasks, whose follow-up requests this proxy does not
# relay (it offers no tasks in either direction).
WITHHELD_CLIENT_CAPABILITIES = frozenset({"tasks"})


def _own_version() -> str:
    try:
        return installed_version("gatekit-mcp")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0"


def offered_version(requested: Any) -> str:
    """The protocol version to ask the upstream for: the client's, when this proxy
    knows it; otherwise this proxy's newest (the upstream then settles, as MCP says,
    on a version both it and the client can speak, or the client gives up)."""
    return requested if requested in HANDSHAKE_VERSIONS else LATEST_VERSION


@dataclass
class Upstream:
    """An initialized upstream server: its ``initialize`` answer, and requests to it
    bounded by ``timeout`` seconds (None: unbounded)."""

    peer: Peer
    initialized: Wire
    timeout: float | None = None
    info: Wire = field(init=False)
    capabilities: Wire = field(init=False)

    def __post_init__(self) -> None:
        info = self.initialized.get("serverInfo")
        capabilities = self.initialized.get("capabilities")
        self.info = info if isinstance(info, dict) else {}
        self.capabilities = capabilities if isinstance(capabilities, dict) else {}

    @property
    def name(self) -> str:
        return str(self.info.get("name") or "mcp")

    @property
    def protocol_version(self) -> str:
        return str(self.initialized.get("protocolVersion"))

    def serves(self, capability: str) -> bool:
        return self.capabilities.get(capability) is not None

    async def request(
        self, method: str, params: Wire | None = None, *, related: RequestId | None = None
    ) -> Wire:
        return await self.peer.request(method, params, timeout=self.timeout, related=related)

    async def notify(self, method: str, params: Wire | None = None) -> None:
        await self.peer.notify(method, params)


async def initialize(
    peer: Peer, params: Wire, *, timeout: float, request_timeout: float | None
) -> Upstream:
    """The MCP handshake with the upstream, bounded by ``timeout`` seconds.

    The caller sends ``notifications/initialized`` when its client does."""
    offered = offered_version(params.get("protocolVersion"))
    capabilities = params.get("capabilities")
    kept = {
        name: value
        for name, value in (capabilities if isinstance(capabilities, dict) else {}).items()
        if name not in WITHHELD_CLIENT_CAPABILITIES
    }
    params = {**params, "protocolVersion": offered, "capabilities": kept}
    with anyio.move_on_after(timeout):
        answer = await peer.request("initialize", params)
        agreed = answer.get("protocolVersion")
        if agreed not in HANDSHAKE_VERSIONS:
            raise RpcError(
                INVALID_PARAMS,
                f"gatekit proxy: {UPSTREAM} answered with protocol version {agreed!r}, "
                f"which this proxy does not speak ({', '.join(HANDSHAKE_VERSIONS)})",
            )
        peer.encode = partial(_to_upstream, version=str(agreed))
        return Upstream(peer, answer, request_timeout)
    raise RpcError(
        REQUEST_TIMEOUT, f"gatekit proxy: {UPSTREAM} did not answer initialize in {timeout:g} s"
    )


def _to_upstream(wire: Wire, _related: RequestId | None, *, version: str | None) -> Any:
    return to_upstream(wire, version)


def upstream_peer(streams: Streams, **handlers: Any) -> Peer:
    """A ``Peer`` on the upstream's transport streams (the protocol version is set
    by ``initialize``)."""
    read_stream, write_stream = streams
    peer = Peer(
        read_stream,
        write_stream,
        name=UPSTREAM,
        encode=partial(_to_upstream, version=None),
        **handlers,
    )
    peer.close_reason = f"gatekit proxy: {UPSTREAM} closed the connection"
    return peer


async def _refuse(inbound: Inbound) -> Wire:
    if inbound.method == "ping":
        return {}
    raise RpcError(METHOD_NOT_FOUND, f"Method not found: {inbound.method}")


async def _ignore(_method: str, _params: Wire) -> None:
    return None


@asynccontextmanager
async def connect(
    transport: AbstractAsyncContextManager[Streams],
    *,
    initialize_timeout: float = 30.0,
    request_timeout: float | None = None,
) -> AsyncIterator[Upstream]:
    """Open ``transport`` and initialize as gatekit-mcp itself (a client that offers
    no capabilities: the upstream's requests are refused, its notifications
    dropped)."""
    async with transport as streams, anyio.create_task_group() as group:
        peer = upstream_peer(streams, on_request=_refuse, on_notification=_ignore)
        group.start_soon(peer.run)
        params = {
            "protocolVersion": LATEST_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "gatekit-mcp", "version": _own_version()},
        }
        upstream = await initialize(
            peer, params, timeout=initialize_timeout, request_timeout=request_timeout
        )
        await upstream.notify("notifications/initialized")
        try:
            yield upstream
        finally:
            group.cancel_scope.cancel()
