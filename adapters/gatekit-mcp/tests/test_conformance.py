"""Conformance: the MCP reference server (``@modelcontextprotocol/server-everything``,
pinned in tests/npm) answers a real MCP client the same directly and through the
proxy, over stdio and over streamable HTTP.

Compared: initialize (server identity, instructions, capabilities), tools/list,
tool results, resources (list, templates, read), prompts (list, get),
completion, logging/setLevel, ping, and the server's requests to the client
(sampling, elicitation, roots) relayed through its tools. The one documented
difference: the proxy withholds the ``tasks`` capability (and ``experimental``).
Policy allows every call here; what is compared is the relay.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp.types as types
import pytest
from gatekit_mcp._compat import http_upstream
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp_harness import free_port, harness_env, proxy_args, running, wire

pytestmark = pytest.mark.anyio

ROOT = {"uri": "file:///work/project", "name": "project"}
WITHHELD = {"tasks", "experimental"}


async def sampling(_context: Any, params: Any) -> Any:
    return types.CreateMessageResult.model_validate(
        {
            "role": "assistant",
            "model": "test-model",
            "content": {"type": "text", "text": "four"},
            "stopReason": "endTurn",
        }
    )


async def elicitation(_context: Any, params: Any) -> Any:
    return types.ElicitResult.model_validate({"action": "accept", "content": {"name": "Ada"}})


async def roots(_context: Any) -> Any:
    return types.ListRootsResult.model_validate({"roots": [ROOT]})


CALLBACKS: dict[str, Any] = {
    "sampling_callback": sampling,
    "elicitation_callback": elicitation,
    "list_roots_callback": roots,
}

Opened = tuple[ClientSession, dict[str, Any]]


@asynccontextmanager
async def over_stdio(command: list[str], env: dict[str, str]) -> AsyncIterator[Opened]:
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write, **CALLBACKS) as s:
        yield s, wire(await s.initialize())


@asynccontextmanager
async def over_http(url: str) -> AsyncIterator[Opened]:
    async with http_upstream(url) as (read, write), ClientSession(read, write, **CALLBACKS) as s:
        yield s, wire(await s.initialize())


async def tool_names(session: ClientSession) -> list[str]:
    return [tool.name for tool in (await session.list_tools()).tools]


async def listed_tools(session: ClientSession) -> dict[str, Any]:
    """tools/list once the tools the server registers after initialize are there."""
    with anyio.fail_after(15):
        # The client hears of them by a list-changed notification; polling is simpler.
        while "trigger-sampling-request" not in await tool_names(session):  # noqa: ASYNC110
            await anyio.sleep(0.1)
    return wire(await session.list_tools())


async def call(session: ClientSession, name: str, **arguments: Any) -> dict[str, Any]:
    return wire(await session.call_tool(name, arguments))


async def with_progress(session: ClientSession) -> dict[str, Any]:
    """A long operation's result and the progress it reported on the way."""
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    arguments = {"duration": 0.2, "steps": 2}
    result = await session.call_tool(
        "trigger-long-running-operation", arguments, progress_callback=on_progress
    )
    return {"result": wire(result), "progress": progress}


async def snapshot(session: ClientSession, init: dict[str, Any]) -> dict[str, Any]:
    """What a client sees of the server, in wire form."""
    capabilities = init.get("capabilities", {})
    resources = wire(await session.list_resources())
    static = next(r["uri"] for r in resources["resources"] if "static/document" in r["uri"])
    prompt_ref = types.PromptReference(type="ref/prompt", name="completable-prompt")
    department = {"name": "department", "value": "E"}
    return {
        "server": init.get("serverInfo"),
        "instructions": init.get("instructions"),
        "capabilities": {k: v for k, v in capabilities.items() if k not in WITHHELD},
        "tools": await listed_tools(session),
        "echo": await call(session, "echo", message="hello"),
        "sum": await call(session, "get-sum", a=2, b=3),
        "progress": await with_progress(session),
        "resources": resources,
        "templates": wire(await session.list_resource_templates()),
        "read": wire(await session.read_resource(static)),  # type: ignore[arg-type]
        "prompts": wire(await session.list_prompts()),
        "prompt": wire(await session.get_prompt("simple-prompt")),
        "prompt_args": wire(await session.get_prompt("args-prompt", {"city": "Oslo"})),
        "completion": wire(await session.complete(prompt_ref, department)),
        "set_level": wire(await session.set_logging_level("debug")),
        "ping": wire(await session.send_ping()),
        "sampling": await call(session, "trigger-sampling-request", prompt="2+2?", maxTokens=5),
        "elicitation": await call(session, "trigger-elicitation-request"),
        "roots": await call(session, "get-roots-list"),
    }


def proxied_over_stdio(tmp_path: Path, server: list[str]) -> AbstractAsyncContextManager[Opened]:
    args = proxy_args(tmp_path, {}, upstream=server)
    return over_stdio([sys.executable, *args], harness_env(tmp_path))


@asynccontextmanager
async def proxied_over_http(tmp_path: Path, server: list[str]) -> AsyncIterator[Opened]:
    port = free_port()
    serve = ["--transport", "http", "--port", str(port)]
    args = proxy_args(tmp_path, {}, upstream=server, extra=serve)
    with running(args, harness_env(tmp_path), port):
        async with over_http(f"http://127.0.0.1:{port}/mcp") as opened:
            yield opened


PROXIES: dict[str, Callable[[Path, list[str]], AbstractAsyncContextManager[Opened]]] = {
    "stdio": proxied_over_stdio,
    "http": proxied_over_http,
}


@pytest.mark.filterwarnings("ignore:The logging capability is deprecated")  # mcp 2.x, as asked
@pytest.mark.parametrize("transport", sorted(PROXIES))
async def test_the_reference_server_answers_the_same_through_the_proxy(
    tmp_path: Path, everything_server: list[str], transport: str
) -> None:
    async with over_stdio(everything_server, harness_env(tmp_path)) as (session, init):
        direct = await snapshot(session, init)
    async with PROXIES[transport](tmp_path, everything_server) as (session, init):
        proxied = await snapshot(session, init)
        full_capabilities = init.get("capabilities", {})
    assert direct["server"]["title"] == "Everything Reference Server"
    assert "tasks" not in full_capabilities  # withheld: tool results must pass the proxy
    for key in direct:
        assert proxied[key] == direct[key], key
    assert "four" in direct["sampling"]["content"][0]["text"]
    assert "Name: Ada" in " ".join(block["text"] for block in direct["elicitation"]["content"])
    assert ROOT["uri"] in direct["roots"]["content"][0]["text"]
    assert direct["completion"]["completion"]["values"] == ["Engineering"]
    assert direct["progress"]["progress"] == [(1, 2, None), (2, 2, None)]
