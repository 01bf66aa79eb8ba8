"""Streamable HTTP on both sides: client -> proxy (served over HTTP) -> upstream (HTTP)."""

from __future__ import annotations

from pathlib import Path

import pytest
from gatekit_mcp._compat import connect, http_upstream
from mcp_harness import UPSTREAM, free_port, harness_env, proxy_args, ran, running, wire

pytestmark = pytest.mark.anyio


async def test_proxy_over_http_in_front_of_an_http_upstream(tmp_path: Path) -> None:
    upstream_port, proxy_port = free_port(), free_port()
    env = harness_env(tmp_path, block=["delete_everything"])
    upstream_url = f"http://127.0.0.1:{upstream_port}/mcp"
    args = proxy_args(
        tmp_path,
        {"hide_blocked_tools": False},
        upstream=[],
        extra=["--upstream-url", upstream_url, "--transport", "http", "--port", str(proxy_port)],
    )
    with running([str(UPSTREAM), "http", str(upstream_port)], env, upstream_port):
        async with connect(http_upstream(upstream_url)) as direct:
            expected = wire(await direct.session.call_tool("add", {"a": 1, "b": 2}))
            expected_tools = wire(await direct.session.list_tools())
        with running(args, env, proxy_port):
            async with connect(http_upstream(f"http://127.0.0.1:{proxy_port}/mcp")) as proxy:
                assert proxy.name == "upstream-test"
                assert wire(await proxy.session.list_tools()) == expected_tools
                allowed = wire(await proxy.session.call_tool("add", {"a": 1, "b": 2}))
                blocked = wire(await proxy.session.call_tool("delete_everything", {}))
    assert allowed == expected
    assert blocked["isError"] is True
    assert "not allowed for this agent" in blocked["content"][0]["text"]
    assert ran(tmp_path) == ["add", "add"]
