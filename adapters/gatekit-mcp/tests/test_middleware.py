"""The in-server gate: mcp 2.x ``Server.middleware``; a clear error on mcp 1.x."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from gatekit_mcp._compat import MCP2
from mcp_harness import TESTS, direct, harness_env, ran, session_for, wire

pytestmark = pytest.mark.anyio


@pytest.mark.skipif(MCP2, reason="mcp 1.x behaviour")
def test_importing_the_middleware_on_mcp_1_fails_clearly() -> None:
    with pytest.raises(ImportError, match=r"needs mcp 2\.x"):
        importlib.import_module("gatekit_mcp.middleware")


def text_of(result: object) -> str:
    return " ".join(block["text"] for block in wire(result)["content"])  # type: ignore[arg-type]


@pytest.mark.skipif(not MCP2, reason="Server.middleware exists only in mcp 2.x")
async def test_the_middleware_gates_calls_inside_the_server(tmp_path: Path) -> None:
    async with direct(tmp_path) as session:
        expected = wire(await session.call_tool("add", {"a": 4, "b": 5}))
    env = harness_env(tmp_path, block=["delete_everything"])
    async with session_for([str(TESTS / "middleware_server.py")], env) as session:
        listed = [tool.name for tool in (await session.list_tools()).tools]
        allowed = wire(await session.call_tool("add", {"a": 4, "b": 5}))
        blocked = await session.call_tool("delete_everything", {"confirm": True})
        page = await session.call_tool("fetch_page", {"url": "https://example.test"})
    assert "delete_everything" not in listed
    assert allowed == expected
    assert wire(blocked)["isError"] is True
    assert "delete_everything is not allowed for this agent" in text_of(blocked)
    assert wire(page)["isError"] is True
    assert "withheld" in text_of(page)
    assert ran(tmp_path) == ["add", "add", "fetch_page"]
