"""The version shim, over real stdio: request context, progress, capabilities."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import mcp.types as types
import pytest
from gatekit_mcp._compat import connect, http_upstream
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_harness import TESTS, free_port, harness_env, running, wire

pytestmark = pytest.mark.anyio


async def test_the_shim_passes_client_name_progress_and_server_identity(tmp_path: Path) -> None:
    params = StdioServerParameters(command=sys.executable, args=[str(TESTS / "context_server.py")])
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    info = types.Implementation(name="test-client", version="1.0")
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write, client_info=info) as session,
    ):
        init = wire(await session.initialize())
        plain = wire(await session.call_tool("whoami", {"x": 1}))
        with_progress = wire(await session.call_tool("whoami", {}, progress_callback=on_progress))
    assert init["serverInfo"]["name"] == "context"
    assert init["instructions"] == "be nice"
    assert "tools" in init["capabilities"]
    assert "prompts" not in init["capabilities"]  # not served: not advertised
    assert plain["content"][0]["text"] == (
        "client=test-client session=None progress=False args={'x': 1}"
    )
    assert "progress=True" in with_progress["content"][0]["text"]
    assert progress == [(1, 2, "halfway")]


async def test_the_shim_passes_the_streamable_http_session_id(tmp_path: Path) -> None:
    port = free_port()
    server = [str(TESTS / "context_server.py"), "http", str(port)]
    with running(server, harness_env(tmp_path), port):
        async with connect(http_upstream(f"http://127.0.0.1:{port}/mcp")) as upstream:
            first = wire(await upstream.session.call_tool("whoami", {}))
            second = wire(await upstream.session.call_tool("whoami", {}))
        async with connect(http_upstream(f"http://127.0.0.1:{port}/mcp")) as upstream:
            other = wire(await upstream.session.call_tool("whoami", {}))
    sessions = [
        re.search(r"session=(\S+)", result["content"][0]["text"]).group(1)  # type: ignore[union-attr]
        for result in (first, second, other)
    ]
    assert sessions[0] != "None"
    assert sessions[0] == sessions[1]  # one client session, one id
    assert sessions[2] != sessions[0]  # another session, another id
