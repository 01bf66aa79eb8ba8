"""One client session of the gating proxy, and the upstream session behind it.

The proxy is transparent for everything it does not govern: it relays each
JSON-RPC message between the client and its own upstream session, in both
directions, as it came — ids mapped, since each side numbers its own requests.

From the client: ``initialize`` opens the upstream session with the client's
own parameters (capabilities and clientInfo, so the upstream may ask the client
for sampling, elicitation or roots) and answers with the upstream's serverInfo,
capabilities (less ``WITHHELD_CAPABILITIES``) and instructions (through the
governance); ``tools/call``, ``tools/list``, ``resources/read``, ``prompts/get``
and the other listings (``LISTINGS``) go through the governance (``proxy.py``);
the other MCP requests (``RELAYED_REQUESTS``) and every notification are relayed.
A request outside MCP's vocabulary is refused: a method the proxy cannot name
could carry a tool call past the gate.

From the upstream: ``sampling/createMessage``, ``elicitation/create``,
``roots/list`` and ``ping`` are relayed to the client, answers back (sampling
and elicitation through the governance, which may gate them: the config's
``upstream_requests``); every notification is relayed (progress to the request
it belongs to).

Cancellation runs both ways: a cancelled request gets no answer, and the
request relayed for it is cancelled on the other side. When the upstream goes
away, requests in flight fail with a JSON-RPC error saying so, and ``run``
raises ``UpstreamLost``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from gatekit_mcp._compat import Streams, ToolCall, Wire, to_client
from gatekit_mcp.config import ProxyConfig
from gatekit_mcp.jsonrpc import (
    CONNECTION_CLOSED,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    REQUEST_TIMEOUT,
    Inbound,
    Peer,
    RequestId,
    RpcError,
)
from gatekit_mcp.proxy import Forwarder
from gatekit_mcp.upstream import UPSTREAM, Upstream, initialize, upstream_peer

__all__ = [
    "LISTINGS",
    "RELAYED_REQUESTS",
    "RELAYED_UPSTREAM_REQUESTS",
    "WITHHELD_CAPABILITIES",
    "ProxySession",
    "UpstreamLost",
]

logger = logging.getLogger("gatekit_mcp")

RELAYED_REQUESTS = frozenset(
    {
        "ping",
        "completion/complete",
        "logging/setLevel",
        "resources/subscribe",
        "resources/unsubscribe",
    }
)
"""Client requests passed to the upstream as they are."""

LISTINGS = frozenset({"prompts/list", "resources/list", "resources/templates/list"})
"""Client requests whose answers' descriptions the governance looks at."""

RELAYED_UPSTREAM_REQUESTS = frozenset(
    {"ping", "sampling/createMessage", "elicitation/create", "roots/list"}
)
"""Upstream requests passed to the client (sampling and elicitation through the
governance, which gates them with ``upstream_requests: gate``)."""

WITHHELD_CAPABILITIES = frozenset({"tasks", "experimental"})
"""Upstream capabilities the client is not offered. ``tasks``: a tool call run as a
task hands its result over later through ``tasks/result``, past the gate's
outcome record and the result shields. ``experimental``: requests the proxy
cannot name, which it does not relay."""

_GRACE = 5.0  # seconds for requests in flight to be answered once the upstream is gone


class UpstreamLost(Exception):
    """The upstream server went away while its client was still there."""


Governance = Callable[[Upstream], Forwarder]
"""Makes the governance (a ``GatingProxy``) for a freshly initialized upstream."""

UpstreamOpener = Callable[[], AbstractAsyncContextManager[Streams]]
"""Opens a transport to the upstream (a new process, or a new HTTP session)."""


def _mirrored(initialized: Wire) -> Wire:
    """The upstream's ``initialize`` answer as the client gets it."""
    capabilities = initialized.get("capabilities")
    offered = {
        name: value
        for name, value in (capabilities if isinstance(capabilities, dict) else {}).items()
        if name not in WITHHELD_CAPABILITIES
    }
    return {**initialized, "capabilities": offered}


def _progress_token(params: Wire) -> str | int | None:
    meta = params.get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


class ProxySession:
    """Serves one client (its transport's streams) until it leaves."""

    def __init__(
        self,
        client_streams: Streams,
        *,
        open_upstream: UpstreamOpener,
        govern: Governance,
        config: ProxyConfig,
        session_id: str | None = None,
    ) -> None:
        read_stream, write_stream = client_streams
        self.client = Peer(
            read_stream,
            write_stream,
            name="the client",
            encode=to_client,
            on_request=self._from_client,
            on_notification=self._client_notified,
        )
        self.session_id = session_id
        self.config = config
        self._open_upstream = open_upstream
        self._govern = govern
        self.upstream: Upstream | None = None
        self.governance: Forwarder | None = None
        self.client_name: str | None = None
        self._initializing = False
        self._lost = anyio.Event()
        self.lost_reason: str | None = None
        self._client_left = False
        # Client requests in flight, in arrival order, with their progress tokens:
        # what the upstream's messages about them are relayed alongside.
        self._in_flight: dict[RequestId, str | int | None] = {}
        self._group: anyio.abc.TaskGroup | None = None

    async def run(self) -> None:
        """Serve until the client leaves; ``UpstreamLost`` if the upstream left first."""
        async with anyio.create_task_group() as group:
            self._group = group

            async def serve_client() -> None:
                await self.client.run()
                self._client_left = True
                group.cancel_scope.cancel()

            group.start_soon(serve_client)
            await self._lost.wait()
            with anyio.move_on_after(_GRACE):  # in-flight requests get their error answers
                await self.client.idle()
            group.cancel_scope.cancel()
        if not self._client_left and self.lost_reason is not None:
            raise UpstreamLost(self.lost_reason)

    # -- the upstream session ----------------------------------------------------------

    def _lose(self, reason: str, *, closing: bool = False) -> None:
        if self.lost_reason is None:
            self.lost_reason = reason
            if not (closing or self._client_left):  # else it is just the session closing
                logger.error("%s", reason)
        self._lost.set()

    async def _start_upstream(self) -> Peer:
        """Open the upstream transport in a task of its own (it must be closed by the
        task that opened it) and return its peer once it runs."""
        assert self._group is not None
        started: list[Peer] = []
        ready = anyio.Event()
        self._group.start_soon(self._keep_upstream, started, ready)
        await ready.wait()
        if not started:
            raise RpcError(CONNECTION_CLOSED, self.lost_reason or "gatekit proxy: no upstream")
        return started[0]

    async def _keep_upstream(self, started: list[Peer], ready: anyio.Event) -> None:
        peer: Peer | None = None
        failure: str | None = None
        closing = False
        try:
            async with self._open_upstream() as streams:
                peer = upstream_peer(
                    streams, on_request=self._from_upstream, on_notification=self._upstream_notified
                )
                started.append(peer)
                ready.set()
                await peer.run()
        except anyio.get_cancelled_exc_class():
            closing = True  # the session is ending, not the upstream
            raise
        except Exception as error:
            failure = f"gatekit proxy: {UPSTREAM} failed: {_root_cause(error)}"
        finally:
            if peer is not None:
                peer.close(failure or peer.close_reason)
            ready.set()
            reason = peer.close_reason if peer is not None else failure or "no upstream"
            self._lose(reason, closing=closing)

    async def _initialize(self, inbound: Inbound) -> Wire:
        if self._initializing:
            raise RpcError(INVALID_REQUEST, "gatekit proxy: the session is already initialized")
        self._initializing = True
        info = inbound.params.get("clientInfo")
        name = info.get("name") if isinstance(info, dict) else None
        self.client_name = name if isinstance(name, str) else None
        try:
            with anyio.fail_after(self.config.initialize_timeout):
                peer = await self._start_upstream()
            upstream = await initialize(
                peer,
                inbound.params,
                timeout=self.config.initialize_timeout,
                request_timeout=self.config.upstream_timeout,
            )
        except TimeoutError:
            reason = f"{UPSTREAM} did not start in {self.config.initialize_timeout:g} s"
            self._lose(f"gatekit proxy: {reason}")
            raise RpcError(REQUEST_TIMEOUT, f"gatekit proxy: {reason}") from None
        except RpcError as error:
            own = error.message.startswith("gatekit proxy:")
            self._lose(
                error.message
                if own
                else f"gatekit proxy: {UPSTREAM} refused to initialize: {error.message}"
            )
            raise
        self.governance = self._govern(upstream)
        self.upstream = upstream
        return await self.governance.introduce(_mirrored(upstream.initialized))

    # -- from the client -----------------------------------------------------------------

    async def _from_client(self, inbound: Inbound) -> Wire:
        if inbound.method == "initialize":
            return await self._initialize(inbound)
        upstream, governance = self.upstream, self.governance
        if upstream is None or governance is None:
            if inbound.method == "ping":
                return {}
            raise RpcError(INVALID_REQUEST, "gatekit proxy: send initialize first")
        self._in_flight[inbound.id] = _progress_token(inbound.params)
        try:
            return await self._route(inbound, upstream, governance)
        finally:
            del self._in_flight[inbound.id]

    async def _route(self, inbound: Inbound, upstream: Upstream, governance: Forwarder) -> Wire:
        method, params = inbound.method, inbound.params
        if method == "tools/call":
            return await governance.call_tool(self._tool_call(inbound))
        if method == "tools/list":
            return await governance.list_tools(params)
        if method == "resources/read":
            return await governance.read_resource(params)
        if method == "prompts/get":
            return await governance.get_prompt(params)
        if method in LISTINGS:
            return await governance.list_items(method, params)
        if method in RELAYED_REQUESTS:
            return await upstream.request(method, params or None)
        raise RpcError(
            METHOD_NOT_FOUND, f"Method not found: {method} (the gatekit proxy does not relay it)"
        )

    def _tool_call(self, inbound: Inbound) -> ToolCall:
        name, arguments = inbound.params.get("name"), inbound.params.get("arguments")
        if not isinstance(name, str):
            raise RpcError(INVALID_PARAMS, "tools/call: params.name must be a string")
        if arguments is not None and not isinstance(arguments, dict):
            raise RpcError(INVALID_PARAMS, "tools/call: params.arguments must be an object")
        return ToolCall(
            name=name,
            arguments=dict(arguments or {}),
            client_name=self.client_name,
            session_id=self.session_id,
            progress=self._progress_sender(inbound),
            params=inbound.params,
        )

    def _progress_sender(
        self, inbound: Inbound
    ) -> Callable[[float, float | None, str | None], Awaitable[None]] | None:
        """Progress of the proxy's own (a review wait) for a client that asked for it."""
        token = _progress_token(inbound.params)
        if token is None:
            return None

        async def send(progress: float, total: float | None, message: str | None) -> None:
            params: Wire = {"progressToken": token, "progress": progress}
            params.update(
                {k: v for k, v in (("total", total), ("message", message)) if v is not None}
            )
            await self.client.notify("notifications/progress", params, related=inbound.id)

        return send

    async def _client_notified(self, method: str, params: Wire) -> None:
        if self.upstream is None:
            logger.debug("gatekit: %s before initialize, not relayed", method)
            return
        await self.upstream.notify(method, params or None)

    # -- from the upstream -----------------------------------------------------------------

    async def _from_upstream(self, inbound: Inbound) -> Wire:
        method, params = inbound.method, inbound.params
        if method not in RELAYED_UPSTREAM_REQUESTS:
            raise RpcError(METHOD_NOT_FOUND, f"Method not found: {method}")
        related = self._latest_request()

        async def relay() -> Wire:
            return await self.client.request(method, params or None, related=related)

        if self.governance is None:  # no request comes before initialize
            return await relay()
        asked = ToolCall(
            name=method,
            arguments={key: value for key, value in params.items() if key != "_meta"},
            client_name=self.client_name,
            session_id=self.session_id,
            params=params,
        )
        return await self.governance.client_request(asked, relay)

    async def _upstream_notified(self, method: str, params: Wire) -> None:
        related: RequestId | None = None
        if method == "notifications/progress":
            related = self._request_with_token(params.get("progressToken"))
        elif method == "notifications/message":
            related = self._latest_request()
        elif method == "notifications/tools/list_changed" and self.governance is not None:
            assert self._group is not None  # not awaited here: it asks the upstream
            self._group.start_soon(self._tools_changed, self.governance)
        await self.client.notify(method, params or None, related=related)

    async def _tools_changed(self, governance: Forwarder) -> None:
        try:
            await governance.tools_changed()
        except RpcError as error:
            logger.warning("gatekit: could not re-read the changed tools: %s", error.message)

    def _request_with_token(self, token: Any) -> RequestId | None:
        for request_id, own in self._in_flight.items():
            if own == token:
                return request_id
        return None

    def _latest_request(self) -> RequestId | None:
        """Over streamable HTTP, a message about a client request travels on that
        request's stream. A stdio upstream does not say which request a message is
        about; the latest one in flight is the likeliest (and keeps the message on
        a stream the client reads even when it opened no standalone one)."""
        return next(reversed(self._in_flight), None)


def _root_cause(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"
