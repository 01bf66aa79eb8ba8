"""The one place that knows mcp 1.x from mcp 2.x.

Everything else in gatekit_mcp speaks MCP *wire* JSON (camelCase dicts, as
they travel between client and server). The gating proxy relays JSON-RPC
messages between the SDK's transports (this module turns their message items
into wire dicts and back); the 2.x middleware reads its request context here.

The supported mcp range is checked here, with ``gatekit.adapters.require``,
before anything imports mcp.

Differences isolated here:
* 1.x wraps a JSON-RPC message in the ``JSONRPCMessage`` root model, 2.x uses
  a plain union read by ``jsonrpc_message_adapter``.
* The 2.x streamable HTTP client sends the ``MCP-Protocol-Version`` header only
  when a message's metadata carries it; the 2.x server transport ends a request
  that gets no answer through a metadata callback.
* The protocol versions each knows (``HANDSHAKE_VERSIONS``).
* 1.x models use camelCase field names, 2.x snake_case with camelCase aliases;
  wire dicts (``by_alias``) are the same in both.
* ``streamable_http_client`` yields three values in 1.x, two in 2.x.
* How each SDK's stdio client parses and writes a line (``parse_line``,
  ``message_line``), which the proxy's own stdio connection repeats.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from gatekit.adapters import require

SUPPORTED = ">=1.30,<3"


def _parse(version: str) -> tuple[int, int]:
    parts = ([*version.split("."), "0", "0"])[:2]
    digits = ["".join(ch for ch in part if ch.isdigit()) or "0" for part in parts]
    return int(digits[0]), int(digits[1])


def _check_version() -> tuple[int, int]:
    """The installed mcp's (major, minor); ImportError naming the range when unsupported."""
    return _parse(require("mcp", SUPPORTED, adapter="gatekit-mcp"))


MCP_VERSION = _check_version()
MCP2 = MCP_VERSION[0] >= 2

import mcp.types as types  # noqa: E402  (after the version check, on purpose)
from mcp.shared.message import (  # noqa: E402
    ClientMessageMetadata,
    ServerMessageMetadata,
    SessionMessage,
)
from pydantic import BaseModel  # noqa: E402

Wire = dict[str, Any]
"""An MCP message body as it travels on the wire (camelCase JSON)."""

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
"""Send a progress notification: (progress, total, message)."""

SESSION_HEADER = "mcp-session-id"
"""Streamable HTTP names each client session in this header (mcp 1.x and 2.x alike)."""

PROTOCOL_HEADER = "mcp-protocol-version"

# 1.x-only names go through ``v1`` (Any), so this module type-checks against
# whichever mcp is installed without a type: ignore per line.
v1: Any = types


def to_wire(model: BaseModel | Mapping[str, Any] | None) -> Wire:
    """A model (of either major version) or a dict as wire JSON."""
    if model is None:
        return {}
    if isinstance(model, BaseModel):
        return model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dict(model)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One ``tools/call`` as the gate sees it, whatever the mcp version."""

    name: str
    arguments: dict[str, Any]
    client_name: str | None = None  # the client's clientInfo.name
    session_id: str | None = None  # the transport's session (streamable HTTP), if any
    progress: ProgressFn | None = None  # set only when the client sent a progressToken
    # The request's params as the client sent them (``_meta`` with its progress
    # token…): forwarded with the name and arguments the decision was about.
    params: Wire = field(default_factory=dict)

    def upstream_params(self) -> Wire:
        """The ``tools/call`` params for the upstream: exactly the decided name and
        arguments. ``task`` is dropped: the proxy does not offer tasks, whose results
        would reach the client past the result shields."""
        extra = {key: value for key, value in self.params.items() if key != "task"}
        return {**extra, "name": self.name, "arguments": self.arguments}


def _progress_token(meta: Any) -> str | int | None:
    if meta is None:
        return None
    if isinstance(meta, Mapping):
        token = meta.get("progress_token", meta.get("progressToken"))
    else:
        token = getattr(meta, "progressToken", None)
    return token if isinstance(token, str | int) else None


def _client_name(session: Any) -> str | None:
    params = getattr(session, "client_params", None)
    info = getattr(params, "clientInfo", None) or getattr(params, "client_info", None)
    name = getattr(info, "name", None)
    return name if isinstance(name, str) else None


def _transport_session_id(http_request: Any) -> str | None:
    headers = getattr(http_request, "headers", None)
    value = headers.get(SESSION_HEADER) if headers is not None else None
    return value if isinstance(value, str) and value else None


def _progress_sender(session: Any, token: str | int | None, request_id: Any) -> ProgressFn | None:
    if token is None:
        return None

    async def send(progress: float, total: float | None, message: str | None) -> None:
        await session.send_progress_notification(
            token, progress, total, message, related_request_id=str(request_id)
        )

    return send


def tool_call(context: Any, name: str, arguments: Any) -> ToolCall:
    """The ``tools/call`` in a request context: 1.x ``server.request_context`` or the
    2.x handler/middleware ``ctx`` (both carry session, meta, request id and, over
    HTTP, the HTTP request)."""
    session = context.session
    return ToolCall(
        name=name,
        arguments=dict(arguments) if isinstance(arguments, Mapping) else {},
        client_name=_client_name(session),
        session_id=_transport_session_id(getattr(context, "request", None)),
        progress=_progress_sender(session, _progress_token(context.meta), context.request_id),
    )


CallToolResult = types.CallToolResult
"""The installed mcp's ``CallToolResult`` model."""


def call_tool_result(wire: Wire) -> CallToolResult:
    """A ``CallToolResult`` of the installed mcp from its wire form."""
    return CallToolResult.model_validate(wire)


# -- raw JSON-RPC messages (the relay) -----------------------------------------
#
# The proxy relays MCP at the JSON-RPC level: it reads the SDK transports'
# ``SessionMessage`` items and writes new ones, and handles everything else as
# wire dicts. What differs between the major versions is how a message model is
# built (1.x: the ``JSONRPCMessage`` root model; 2.x: a union read by a type
# adapter) and what the transports put in, and expect in, a message's metadata.


def _handshake_versions() -> tuple[str, ...]:
    # Read by name: each module exists in one major version only.
    if MCP2:
        return tuple(importlib.import_module("mcp.types.version").HANDSHAKE_PROTOCOL_VERSIONS)
    return tuple(importlib.import_module("mcp.shared.version").SUPPORTED_PROTOCOL_VERSIONS)


HANDSHAKE_VERSIONS = _handshake_versions()
"""Protocol versions negotiated with ``initialize`` that the installed mcp knows."""

LATEST_VERSION = HANDSHAKE_VERSIONS[-1]


def message_wire(message: SessionMessage) -> Wire:
    """The JSON-RPC message a transport delivered, as a wire dict."""
    model: Any = message.message
    dumped: Wire = model.model_dump(by_alias=True, mode="json", exclude_unset=True)
    return dumped


def _message(wire: Wire) -> Any:
    if MCP2:
        return v1.jsonrpc_message_adapter.validate_python(wire)
    return v1.JSONRPCMessage.model_validate(wire)


def to_client(wire: Wire, related_request_id: str | int | None = None) -> SessionMessage:
    """A message for the client's transport. Over streamable HTTP, a message related
    to a client request travels on that request's response stream; an unrelated one
    on the session's standalone stream."""
    metadata = (
        ServerMessageMetadata(related_request_id=related_request_id)
        if related_request_id is not None
        else None
    )
    return SessionMessage(_message(wire), metadata=metadata)


def to_upstream(wire: Wire, protocol_version: str | None = None) -> SessionMessage:
    """A message for the upstream's transport. The 2.x streamable HTTP client sends
    the negotiated ``MCP-Protocol-Version`` header only when a message carries it in
    its metadata; 1.x reads it from the ``initialize`` answer by itself."""
    if MCP2 and protocol_version is not None:
        headers = {PROTOCOL_HEADER: protocol_version}
        metadata: Any = ClientMessageMetadata(headers=headers)  # type: ignore[call-arg,unused-ignore]
        return SessionMessage(_message(wire), metadata=metadata)
    return SessionMessage(_message(wire))


@dataclass(frozen=True, slots=True)
class Arrival:
    """What a transport tells about a message it delivered, beyond the message."""

    http_request: Any = None  # the Starlette request (streamable HTTP), if any
    # 2.x streamable HTTP: ends the HTTP exchange of a request that gets no answer
    # (a cancelled one); 1.x leaves that stream open until the client closes it.
    unanswered: Callable[[], Awaitable[None]] | None = None


def arrival(message: SessionMessage) -> Arrival:
    metadata = message.metadata
    if not isinstance(metadata, ServerMessageMetadata):
        return Arrival()
    return Arrival(
        http_request=metadata.request_context,
        unanswered=getattr(metadata, "on_request_unanswered", None),
    )


# -- transports ----------------------------------------------------------------

Streams = tuple[Any, Any]
"""A transport's (read stream, write stream) of ``SessionMessage`` items."""


class StdinLines:
    """stdin's lines for the SDK's stdio server (both versions take an explicit
    ``stdin``), read without a worker thread, and stoppable.

    The SDK reads stdin in a thread, which no cancellation interrupts: a proxy whose
    upstream is gone could not stop while its client keeps stdin open. Waiting for
    the descriptor to be readable can be stopped, so the server's writer is never
    cancelled and flushes its last answers before the proxy exits."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._blocking = os.get_blocking(fd)
        self._stopped = False
        self._wait: anyio.CancelScope | None = None

    def __aiter__(self) -> StdinLines:
        return self

    async def __anext__(self) -> str:
        while b"\n" not in self._buffer:
            with anyio.CancelScope() as self._wait:
                if not self._stopped:
                    await anyio.wait_readable(self._fd)
            if self._stopped:
                raise StopAsyncIteration
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:  # end of input
                if not self._buffer:
                    raise StopAsyncIteration
                chunk = b"\n"
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode("utf-8", errors="replace") + "\n"

    def stop(self) -> None:
        """Read no more: the server's reader ends as at the end of input."""
        self._stopped = True
        if self._wait is not None:
            self._wait.cancel()

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[StdinLines]:
        os.set_blocking(self._fd, False)
        try:
            yield self
        finally:  # stdin may be a terminal the shell reads after us
            os.set_blocking(self._fd, self._blocking)


@asynccontextmanager
async def stdio_server_streams() -> AsyncIterator[tuple[Streams, StdinLines]]:
    """This process's stdin/stdout as a server transport, and its stdin reader (stop
    it to end the transport without waiting for the client to close stdin)."""
    from mcp.server.stdio import stdio_server

    stdin = StdinLines(sys.stdin.fileno())
    reader: Any = stdin
    async with stdin.reading(), stdio_server(stdin=reader) as streams:
        yield streams, stdin


def http_server_transport(session_id: str, *, host: str, idle_timeout: float | None) -> Any:
    """The SDK's streamable HTTP transport for one client session (same API in 1.x
    and 2.x): ``connect()`` gives the session's streams, ``handle_request`` serves
    its HTTP requests, ``terminate()`` ends it. On a loopback host, requests from
    other origins are refused (DNS rebinding), as the SDK's own servers do."""
    from mcp.server.streamable_http import StreamableHTTPServerTransport
    from mcp.server.transport_security import TransportSecuritySettings

    security = None
    if host in ("127.0.0.1", "localhost", "::1"):
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    return StreamableHTTPServerTransport(
        mcp_session_id=session_id, security_settings=security, idle_timeout=idle_timeout
    )


def parse_line(line: bytes) -> SessionMessage | Exception:
    """One line from a stdio server as the SDK's stdio client reads it: the message,
    or the parse error as an item of its own (the session logs it and reads on).

    1.x: the standard ``json`` parser, then the model from the parsed value. The
    same messages and errors as 1.x's ``model_validate_json``, which took about
    three times as long on a 10 MB result (20 ms against 7 on the bench machine);
    deeply nested JSON is an error item in both (``json`` raises RecursionError)."""
    try:
        if MCP2:
            message = v1.jsonrpc_message_adapter.validate_json(line, by_name=False)
        else:
            message = v1.JSONRPCMessage.model_validate(json.loads(line))
    except (ValueError, RecursionError) as error:  # incl. pydantic's ValidationError
        return error
    return SessionMessage(message)


def message_line(item: SessionMessage) -> bytes:
    """A message as the SDK's stdio client writes it: JSON (1.x leaves out ``None``
    fields, 2.x fields never set), one line."""
    model: Any = item.message
    if MCP2:
        text: str = model.model_dump_json(by_alias=True, exclude_unset=True)
    else:
        text = model.model_dump_json(by_alias=True, exclude_none=True)
    return (text + "\n").encode()


def stdio_upstream(
    command: list[str], env: Mapping[str, str] | None = None
) -> AbstractAsyncContextManager[Streams]:
    """An upstream server process over stdio. On POSIX the proxy's own connection
    (``upstream_process``: a line reader linear in the line's size, large lines parsed
    off the event loop); elsewhere the SDK's."""
    from gatekit_mcp import upstream_process as own

    if own.is_posix():
        environment = {**own.default_environment(), **(env or {})}
        return own.stdio_connection(command, environment, parse_line, message_line)

    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=command[0], args=list(command[1:]), env=dict(env) if env is not None else None
    )
    return stdio_client(params)


HTTP_EVENT_LIMIT = 64 * 1024 * 1024
"""Bytes of one server-sent event the proxy takes from an HTTP upstream. The 2.x
client refuses events over 1 MiB by default, and an answer is one event: a 2 MB
tool result would fail through the proxy that a 1.x client reads directly."""


@asynccontextmanager
async def http_upstream(url: str) -> AsyncIterator[Streams]:
    """A streamable HTTP client transport (1.x yields a third item, 2.x does not)."""
    from mcp.client.streamable_http import streamable_http_client

    options: dict[str, Any] = {"max_sse_event_size": HTTP_EVENT_LIMIT} if MCP2 else {}
    async with streamable_http_client(url, **options) as streams:
        yield streams[0], streams[1]
