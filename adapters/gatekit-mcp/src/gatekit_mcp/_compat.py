"""The one place that knows mcp 1.x from mcp 2.x.

Everything else in gatekit_mcp speaks MCP *wire* JSON (camelCase dicts, as
they travel between client and server) and version-neutral handler
callables; this module turns those into a low-level ``Server`` of whichever
major version is installed, and upstream sessions into the same dicts.

The supported mcp range is checked here, with ``gatekit.adapters.require``,
before anything imports mcp.

Differences isolated here:
* 1.x registers request handlers in ``Server.request_handlers`` keyed by
  request type, reads the request context from ``server.request_context`` and
  wraps results in ``ServerResult``; 2.x takes ``on_*`` constructor arguments
  called with ``(ctx, params)``.
* 1.x models use camelCase field names, 2.x snake_case with camelCase aliases;
  wire dicts (``by_alias``) are the same in both.
* ``streamable_http_client`` yields three values in 1.x, two in 2.x; the
  streamable HTTP server app is built by hand in 1.x, by ``Server`` in 2.x.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

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
from mcp import ClientSession  # noqa: E402
from mcp.server.lowlevel import Server  # noqa: E402
from pydantic import BaseModel  # noqa: E402

Wire = dict[str, Any]
"""An MCP message body as it travels on the wire (camelCase JSON)."""

ProgressFn = Callable[[float, float | None, str | None], Awaitable[None]]
"""Send a progress notification: (progress, total, message)."""


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


@dataclass
class Handlers:
    """Version-neutral request handlers: wire params in, wire result out.

    Unset handlers are not served (and their capability is not advertised).
    """

    call_tool: Callable[[ToolCall], Awaitable[Wire]]
    list_tools: Callable[[Wire], Awaitable[Wire]]
    list_resources: Callable[[Wire], Awaitable[Wire]] | None = None
    list_resource_templates: Callable[[Wire], Awaitable[Wire]] | None = None
    read_resource: Callable[[Wire], Awaitable[Wire]] | None = None
    list_prompts: Callable[[Wire], Awaitable[Wire]] | None = None
    get_prompt: Callable[[Wire], Awaitable[Wire]] | None = None


# (Handlers attribute = 2.x ``on_<attr>`` argument, 1.x request type, result type)
_ROUTES = (
    ("list_tools", "ListToolsRequest", "ListToolsResult"),
    ("list_resources", "ListResourcesRequest", "ListResourcesResult"),
    ("list_resource_templates", "ListResourceTemplatesRequest", "ListResourceTemplatesResult"),
    ("read_resource", "ReadResourceRequest", "ReadResourceResult"),
    ("list_prompts", "ListPromptsRequest", "ListPromptsResult"),
    ("get_prompt", "GetPromptRequest", "GetPromptResult"),
)


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


# Streamable HTTP names each client session in this header (mcp 1.x and 2.x alike).
_SESSION_HEADER = "mcp-session-id"


def _transport_session_id(http_request: Any) -> str | None:
    headers = getattr(http_request, "headers", None)
    value = headers.get(_SESSION_HEADER) if headers is not None else None
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


def build_server(
    name: str, version: str, instructions: str | None, handlers: Handlers
) -> Server[Any]:
    """A low-level MCP server that routes every supported request to ``handlers``."""
    if MCP2:
        return _build_server_v2(name, version, instructions, handlers)
    return _build_server_v1(name, version, instructions, handlers)


# The 1.x builder is type-checked against whichever mcp is installed; its 1.x-only
# names go through ``v1`` (Any) rather than a type: ignore per line.
v1: Any = types


def _build_server_v1(
    name: str, version: str, instructions: str | None, handlers: Handlers
) -> Server[Any]:
    server: Any = Server(name, version=version, instructions=instructions)

    async def call_tool(request: Any) -> Any:
        call = tool_call(server.request_context, request.params.name, request.params.arguments)
        return v1.ServerResult(call_tool_result(await handlers.call_tool(call)))

    server.request_handlers[v1.CallToolRequest] = call_tool
    for attr, request_name, result_name in _ROUTES:
        handler = getattr(handlers, attr)
        if handler is not None:
            server.request_handlers[getattr(v1, request_name)] = _route_v1(
                handler, getattr(v1, result_name)
            )
    return server  # type: ignore[no-any-return]


def _route_v1(handler: Callable[[Wire], Awaitable[Wire]], result_type: type[BaseModel]) -> Any:
    async def route(request: Any) -> Any:
        params = to_wire(getattr(request, "params", None))
        return v1.ServerResult(result_type.model_validate(await handler(params)))

    return route


def _build_server_v2(
    name: str, version: str, instructions: str | None, handlers: Handlers
) -> Server[Any]:
    async def call_tool(ctx: Any, params: Any) -> Any:
        return call_tool_result(
            await handlers.call_tool(tool_call(ctx, params.name, params.arguments))
        )

    routes: dict[str, Any] = {"on_call_tool": call_tool}
    for attr, _request_name, result_name in _ROUTES:
        handler = getattr(handlers, attr)
        if handler is not None:
            routes[f"on_{attr}"] = _route_v2(handler, getattr(types, result_name))
    return Server(name, version=version, instructions=instructions, **routes)  # type: ignore[arg-type,unused-ignore]


def _route_v2(handler: Callable[[Wire], Awaitable[Wire]], result_type: type[BaseModel]) -> Any:
    async def route(ctx: Any, params: Any) -> Any:
        return result_type.model_validate(await handler(to_wire(params)))

    return route


# -- serving ------------------------------------------------------------------


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client over this process's stdin/stdout until it disconnects."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


def http_app(server: Server[Any], path: str = "/mcp", host: str = "127.0.0.1") -> Any:
    """A Starlette app serving ``server`` over streamable HTTP at ``path``."""
    if MCP2:
        return server.streamable_http_app(streamable_http_path=path, host=host)  # type: ignore[attr-defined,unused-ignore]
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from starlette.applications import Starlette
    from starlette.routing import Route

    manager = StreamableHTTPSessionManager(app=server)

    class _Endpoint:
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            await manager.handle_request(scope, receive, send)

    return Starlette(routes=[Route(path, endpoint=_Endpoint())], lifespan=lambda _: manager.run())


async def serve_http(server: Server[Any], host: str, port: int, path: str = "/mcp") -> None:
    """Serve ``server`` over streamable HTTP until cancelled."""
    import uvicorn

    config = uvicorn.Config(http_app(server, path, host), host=host, port=port, log_level="warning")
    await uvicorn.Server(config).serve()


# -- upstream -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upstream:
    """A connected, initialized upstream MCP server."""

    session: ClientSession
    name: str
    version: str
    instructions: str | None
    capabilities: Wire

    def serves(self, capability: str) -> bool:
        return self.capabilities.get(capability) is not None


def stdio_upstream(
    command: list[str], env: Mapping[str, str] | None = None
) -> AbstractAsyncContextManager[tuple[Any, Any]]:
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=command[0], args=list(command[1:]), env=dict(env) if env is not None else None
    )
    return stdio_client(params)


@asynccontextmanager
async def http_upstream(url: str) -> AsyncIterator[tuple[Any, Any]]:
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as streams:
        yield streams[0], streams[1]


@asynccontextmanager
async def connect(
    transport: AbstractAsyncContextManager[tuple[Any, Any]],
) -> AsyncIterator[Upstream]:
    """Open ``transport`` (from ``stdio_upstream``/``http_upstream``) and initialize."""
    async with (
        transport as (read_stream, write_stream),
        ClientSession(read_stream, write_stream) as session,
    ):
        result = to_wire(await session.initialize())
        info = result.get("serverInfo", {})
        yield Upstream(
            session=session,
            name=str(info.get("name") or "mcp"),
            version=str(info.get("version") or ""),
            instructions=result.get("instructions"),
            capabilities=result.get("capabilities", {}),
        )


def paginated(params: Wire) -> Any:
    """Wire params of a list request as the client's ``PaginatedRequestParams``."""
    return types.PaginatedRequestParams.model_validate(params) if params else None


def progress_callback(progress: ProgressFn | None) -> Any:
    """Relay upstream progress to our client, when our client asked for progress."""
    if progress is None:
        return None

    async def relay(value: float, total: float | None, message: str | None) -> None:
        await progress(value, total, message)

    return relay
