"""A server built with ``_compat.build_server`` whose one tool reports what the
shim extracted from the request: the client's name, its transport session and
whether progress was asked. ``context_server.py http PORT`` serves streamable HTTP."""

from __future__ import annotations

import sys

import anyio
from gatekit_mcp._compat import Handlers, ToolCall, Wire, build_server, serve_http, serve_stdio


async def call_tool(call: ToolCall) -> Wire:
    if call.progress is not None:
        await call.progress(1, 2, "halfway")
    text = (
        f"client={call.client_name} session={call.session_id} "
        f"progress={call.progress is not None} args={call.arguments}"
    )
    return {"content": [{"type": "text", "text": text}], "isError": False}


async def list_tools(params: Wire) -> Wire:
    return {"tools": [{"name": "whoami", "inputSchema": {"type": "object"}}]}


if __name__ == "__main__":
    server = build_server("context", "1.0", "be nice", Handlers(call_tool, list_tools))
    if sys.argv[1:2] == ["http"]:
        anyio.run(serve_http, server, "127.0.0.1", int(sys.argv[2]))
    else:
        anyio.run(serve_stdio, server)
