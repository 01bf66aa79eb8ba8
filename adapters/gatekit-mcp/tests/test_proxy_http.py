"""The proxy served over streamable HTTP: in front of an HTTP upstream, and a
session (with its own upstream session) per client."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp_harness import (
    TESTS,
    UPSTREAM,
    free_port,
    harness_env,
    http_session,
    proxy_args,
    ran,
    running,
    session_for,
    wire,
)

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
        async with http_session(upstream_url) as direct:
            expected = wire(await direct.call_tool("add", {"a": 1, "b": 2}))
            expected_tools = wire(await direct.list_tools())
        with running(args, env, proxy_port):
            async with http_session(f"http://127.0.0.1:{proxy_port}/mcp") as proxy:
                assert wire(await proxy.list_tools()) == expected_tools
                allowed = wire(await proxy.call_tool("add", {"a": 1, "b": 2}))
                blocked = wire(await proxy.call_tool("delete_everything", {}))
    assert allowed == expected
    assert blocked["isError"] is True
    assert "not allowed for this agent" in blocked["content"][0]["text"]
    assert ran(tmp_path) == ["add", "add"]


async def test_a_result_over_a_megabyte_passes_from_an_http_upstream(tmp_path: Path) -> None:
    """mcp 2.x's HTTP client refuses server-sent events over 1 MiB unless told
    otherwise; the proxy's upstream side takes what a 1.x client would."""
    upstream_port = free_port()
    env = harness_env(tmp_path)
    upstream_url = f"http://127.0.0.1:{upstream_port}/mcp"
    args = proxy_args(tmp_path, {}, upstream=[], extra=["--upstream-url", upstream_url])
    with running([str(UPSTREAM), "http", str(upstream_port)], env, upstream_port):
        async with session_for(args, env) as proxy:  # a stdio client: no event limit
            result = await proxy.call_tool("big", {"megabytes": 2})
    assert not wire(result).get("isError")
    assert first_text(result) == "x" * 2_000_000


SCRIPTED = TESTS / "scripted_upstream.py"
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"},
    },
}
HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def scripted_proxy(tmp_path: Path, *extra: str) -> tuple[list[str], dict[str, str], int, str]:
    """Args, env, port and URL of the proxy served over HTTP in front of the scripted
    upstream (a stdio command: each client session starts its own process)."""
    port = free_port()
    serve = ["--transport", "http", "--port", str(port), *extra]
    args = proxy_args(tmp_path, {}, upstream=[sys.executable, str(SCRIPTED)], extra=serve)
    env = {**harness_env(tmp_path), "SCRIPTED_LOG": str(tmp_path / "upstream.jsonl")}
    return args, env, port, f"http://127.0.0.1:{port}/mcp"


def first_text(result: object) -> str:
    return str(wire(result)["content"][0]["text"])  # type: ignore[arg-type]


async def test_each_client_session_has_its_own_upstream_session(tmp_path: Path) -> None:
    args, env, port, url = scripted_proxy(tmp_path)
    logged: dict[str, list[object]] = {"a": [], "b": []}

    def collect(name: str) -> Any:
        async def on_log(params: Any) -> None:
            logged[name].append(params.data)

        return on_log

    with running(args, env, port):
        async with (
            http_session(url, logging_callback=collect("a")) as a,
            http_session(url, logging_callback=collect("b")) as b,
        ):
            pid_a = first_text(await a.call_tool("whoami", {}))
            pid_b = first_text(await b.call_tool("whoami", {}))
            again_a = first_text(await a.call_tool("whoami", {}))
            await a.call_tool("log", {"text": "for a only"})
            await b.send_ping()
    assert pid_a != pid_b  # two upstream processes
    assert pid_a == again_a  # one per session, kept for its life
    assert logged == {"a": ["for a only"], "b": []}


async def test_sessions_are_bounded_and_a_closed_one_frees_its_slot(tmp_path: Path) -> None:
    args, env, port, url = scripted_proxy(tmp_path, "--max-sessions", "1")
    with running(args, env, port):
        async with http_session(url) as a, httpx.AsyncClient() as http:
            refused = await http.post(url, json=INITIALIZE, headers=HEADERS)
            still = first_text(await a.call_tool("echo", {"text": "a is served"}))
        async with http_session(url) as b:  # a ended (DELETE): its slot is free
            after = first_text(await b.call_tool("echo", {"text": "b is served"}))
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert error["code"] == -32011
    assert "too many open sessions (1)" in error["message"]
    assert "--max-sessions" in error["message"]
    assert (still, after) == ("a is served", "b is served")


async def test_an_upstream_that_dies_ends_only_its_own_session(tmp_path: Path) -> None:
    args, env, port, url = scripted_proxy(tmp_path)
    with running(args, env, port):
        async with http_session(url) as a, http_session(url) as b, httpx.AsyncClient() as http:
            with pytest.raises(Exception) as died:  # McpError (1.x) or MCPError (2.x)
                await a.call_tool("exit", {})
            session_id = await _session_id_of(http, url)
            assert first_text(await b.call_tool("echo", {"text": "b lives"})) == "b lives"
        async with http_session(url) as c:
            assert first_text(await c.call_tool("echo", {"text": "new"})) == "new"
    assert "the upstream MCP server closed the connection" in str(died.value)
    assert session_id  # a session we can ask about after it ended


async def _session_id_of(http: httpx.AsyncClient, url: str) -> str:
    """Open a raw session whose upstream then dies; the 404 for its next request
    names why it ended."""
    opened = await http.post(url, json=INITIALIZE, headers=HEADERS)
    session_id = opened.headers["mcp-session-id"]
    headers = {**HEADERS, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"}
    call = {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "exit", "arguments": {}},
    }
    died = await http.post(url, json=call, headers=headers)
    assert "closed the connection" in died.text  # the SSE answer carries the error
    with anyio.fail_after(10):
        while True:
            later = await http.post(url, json={**call, "id": 3}, headers=headers)
            if later.status_code == 404:
                break
            await anyio.sleep(0.1)
    message = later.json()["error"]["message"]
    assert "the upstream MCP server closed the connection" in message
    assert "initialize a new one" in message
    return session_id


async def test_a_dropped_http_upstream_fails_the_call_and_ends_the_stdio_proxy(
    tmp_path: Path,
) -> None:
    upstream_port = free_port()
    env = harness_env(tmp_path)
    upstream_url = f"http://127.0.0.1:{upstream_port}/mcp"
    args = proxy_args(tmp_path, {}, upstream=[], extra=["--upstream-url", upstream_url])
    with running([str(UPSTREAM), "http", str(upstream_port)], env, upstream_port) as upstream:
        async with session_for(args, env) as session:
            before = first_text(await session.call_tool("echo", {"text": "up"}))
            upstream.terminate()  # the connection drops
            upstream.wait(10)
            with pytest.raises(Exception) as failed:  # McpError (1.x) or MCPError (2.x)
                await session.call_tool("echo", {"text": "down"})
    assert before == "up"
    assert "upstream MCP server" in str(failed.value)


async def test_a_session_starts_with_initialize_and_unknown_sessions_are_named(
    tmp_path: Path,
) -> None:
    args, env, port, url = scripted_proxy(tmp_path)
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    with running(args, env, port):
        async with httpx.AsyncClient() as http:
            no_session = await http.post(url, json=ping, headers=HEADERS)
            listen = await http.get(url, headers={"accept": "text/event-stream"})
            unknown = await http.post(url, json=ping, headers={**HEADERS, "mcp-session-id": "nope"})
    assert no_session.status_code == 400
    assert "a new session starts with initialize" in no_session.json()["error"]["message"]
    assert listen.status_code == 400
    assert unknown.status_code == 404
    assert "no session 'nope'" in unknown.json()["error"]["message"]
    assert not (tmp_path / "upstream.jsonl").exists()  # no upstream was started for any
