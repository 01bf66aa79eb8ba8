"""The version shim, over real stdio: request context, progress, capabilities."""

from __future__ import annotations

import sys
from pathlib import Path

import mcp.types as types
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_harness import TESTS, wire

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
    assert plain["content"][0]["text"] == "client=test-client progress=False args={'x': 1}"
    assert "progress=True" in with_progress["content"][0]["text"]
    assert progress == [(1, 2, "halfway")]
