"""The proxy over streamable HTTP: one upstream session per client session.

A client's ``initialize`` (a POST without an ``Mcp-Session-Id``) opens a session:
the SDK's streamable HTTP transport for it, a ``ProxySession`` on its streams,
and that session's own upstream — a new process for a command, a new HTTP
session for a URL. Nothing of one client session is visible to another. The
session ends when the client deletes it, when it idles for ``IDLE_TIMEOUT``,
or when its upstream goes away (requests in flight are answered with an error
saying so; later requests get a 404 that names the reason).

At most ``max_sessions`` are open at once; one more ``initialize`` is answered
with a JSON-RPC error (HTTP 503) until one ends.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from gatekit_mcp._compat import (
    HANDSHAKE_VERSIONS,
    PROTOCOL_HEADER,
    SESSION_HEADER,
    http_server_transport,
)
from gatekit_mcp.chunked import chunked_send
from gatekit_mcp.config import ProxyConfig
from gatekit_mcp.jsonrpc import INVALID_REQUEST
from gatekit_mcp.session import Governance, ProxySession, UpstreamLost, UpstreamOpener

__all__ = ["IDLE_TIMEOUT", "SESSIONS_FULL", "HttpSessions", "serve_http"]

logger = logging.getLogger("gatekit_mcp")

SESSIONS_FULL = -32011
"""JSON-RPC error code of an ``initialize`` refused because every session slot is taken."""

IDLE_TIMEOUT = 30 * 60.0  # seconds without a request before a session is closed
_REMEMBERED = 1000  # ended sessions whose reason a late request is still told


def _json_error(status: int, code: int, message: str, request_id: Any = None) -> Any:
    from starlette.responses import JSONResponse

    body = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status)


def _replaying(body: bytes, receive: Any) -> Any:
    """``receive`` that hands out an already read request body once more."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _opening_request(body: bytes) -> Any:
    """The JSON-RPC ``initialize`` request in ``body``, or None."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if isinstance(message, dict) and message.get("method") == "initialize" and "id" in message:
        return message
    return None


class HttpSessions:
    """An ASGI app serving the proxy's MCP endpoint, a session per client."""

    def __init__(
        self,
        open_upstream: UpstreamOpener,
        govern: Governance,
        config: ProxyConfig,
        *,
        host: str = "127.0.0.1",
        max_sessions: int = 100,
        idle_timeout: float | None = IDLE_TIMEOUT,
    ) -> None:
        self._open_upstream = open_upstream
        self._govern = govern
        self._config = config
        self._host = host
        self.max_sessions = max_sessions
        self._idle_timeout = idle_timeout
        self._transports: dict[str, Any] = {}
        self._sessions: dict[str, ProxySession] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()
        self._group: TaskGroup | None = None

    @property
    def open_sessions(self) -> int:
        return len(self._transports)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Sessions live in this context (the app's lifespan)."""
        async with anyio.create_task_group() as group:
            self._group = group
            try:
                yield
            finally:
                group.cancel_scope.cancel()
                self._group = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import Request

        send = chunked_send(send)  # a large answer must not hold the event loop
        request = Request(scope, receive)
        session_id = request.headers.get(SESSION_HEADER)
        if session_id is not None:
            await self._existing(session_id, request, scope, receive, send)
        elif request.method == "POST":
            await self._opening(request, scope, receive, send)
        else:
            message = f"gatekit proxy: {request.method} needs an {SESSION_HEADER} header"
            await _json_error(400, INVALID_REQUEST, message)(scope, receive, send)

    async def _existing(
        self, session_id: str, request: Any, scope: Any, receive: Any, send: Any
    ) -> None:
        transport = self._transports.get(session_id)
        session = self._sessions.get(session_id)
        lost = session.lost_reason if session is not None else None
        if transport is None or (lost is not None and request.method == "POST"):
            # A session whose upstream is gone takes no new message while it ends.
            why = lost or self._ended.get(session_id, "it ended, or never existed")
            message = f"gatekit proxy: no session {session_id[:64]!r}: {why}; initialize a new one"
            await _json_error(404, INVALID_REQUEST, message)(scope, receive, send)
            return
        version = request.headers.get(PROTOCOL_HEADER)
        if version is not None and version not in HANDSHAKE_VERSIONS:
            message = f"gatekit proxy: unsupported protocol version {version!r}"
            await _json_error(400, INVALID_REQUEST, message)(scope, receive, send)
            return
        await transport.handle_request(scope, receive, send)
        if transport.is_terminated:  # a DELETE: forget it now
            self._forget(session_id, "the client ended it")

    async def _opening(self, request: Any, scope: Any, receive: Any, send: Any) -> None:
        body = await request.body()
        opening = _opening_request(body)
        if opening is None:
            message = f"gatekit proxy: a new session starts with initialize (no {SESSION_HEADER})"
            await _json_error(400, INVALID_REQUEST, message)(scope, receive, send)
            return
        if len(self._transports) >= self.max_sessions:
            logger.warning("gatekit: refused a session: %d are open", len(self._transports))
            message = (
                f"gatekit proxy: too many open sessions ({self.max_sessions}); retry when one "
                "ends, or start the proxy with a larger --max-sessions"
            )
            error = _json_error(503, SESSIONS_FULL, message, opening.get("id"))
            await error(scope, receive, send)
            return
        transport = await self._open_session()
        await transport.handle_request(scope, _replaying(body, receive), send)

    async def _open_session(self) -> Any:
        if self._group is None:
            raise RuntimeError("HttpSessions is not running (use it inside running())")
        session_id = uuid.uuid4().hex
        transport = http_server_transport(
            session_id, host=self._host, idle_timeout=self._idle_timeout
        )
        self._transports[session_id] = transport
        await self._group.start(self._serve, session_id, transport)
        return transport

    async def _serve(
        self, session_id: str, transport: Any, *, task_status: TaskStatus[None]
    ) -> None:
        try:
            async with transport.connect() as streams:
                task_status.started()
                reason = "the client ended it"
                try:
                    reason = await self._run_session(session_id, transport, streams)
                finally:
                    # Ended while the transport still runs, so its open streams end
                    # cleanly rather than being cut when it closes.
                    self._forget(session_id, reason)
                    with anyio.CancelScope(shield=True):
                        await transport.terminate()
        except Exception:
            logger.exception("gatekit: session %s failed", session_id)
            self._forget(session_id, "it failed")

    async def _run_session(self, session_id: str, transport: Any, streams: Any) -> str:
        """Serve the session until it ends; why it ended."""
        session = ProxySession(
            streams,
            open_upstream=self._open_upstream,
            govern=self._govern,
            config=self._config,
            session_id=session_id,
        )
        idle = transport.idle_scope or anyio.CancelScope()
        self._sessions[session_id] = session
        try:
            with idle:
                await session.run()
        except UpstreamLost as lost:  # caught here, not wrapped by the task group
            return str(lost)
        return "it was idle too long" if idle.cancelled_caught else "the client ended it"

    def _forget(self, session_id: str, reason: str) -> None:
        self._sessions.pop(session_id, None)
        if self._transports.pop(session_id, None) is None:
            return
        self._ended[session_id] = reason
        while len(self._ended) > _REMEMBERED:
            self._ended.popitem(last=False)


def http_app(sessions: HttpSessions, path: str = "/mcp") -> Any:
    """A Starlette app serving ``sessions`` at ``path``."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        async with sessions.running():
            yield

    return Starlette(routes=[Route(path, endpoint=sessions)], lifespan=lifespan)


async def serve_http(sessions: HttpSessions, host: str, port: int, path: str = "/mcp") -> None:
    """Serve ``sessions`` over streamable HTTP until cancelled."""
    import uvicorn

    config = uvicorn.Config(http_app(sessions, path), host=host, port=port, log_level="warning")
    await uvicorn.Server(config).serve()
