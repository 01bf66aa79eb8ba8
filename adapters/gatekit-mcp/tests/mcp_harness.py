"""Start real MCP processes for the tests: the upstream test server, directly or
behind ``python -m gatekit_mcp proxy``, and talk to them with a real client; or
put an in-process ``GatingProxy`` in front of the real upstream."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import yaml
from gatekit_mcp import GatingProxy, PinStore, ProxyConfig, wait_for_reports
from gatekit_mcp._compat import ToolCall, http_upstream, stdio_upstream
from gatekit_mcp.upstream import connect
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from pydantic import BaseModel

from gatekit import AsyncClient

TESTS = Path(__file__).parent
UPSTREAM = TESTS / "upstream_server.py"


def wire(model: BaseModel) -> dict[str, Any]:
    data = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    data.pop("resultType", None)  # mcp 2.x stamps this on every result
    return data


def ran(tmp_path: Path) -> list[str]:
    marker = tmp_path / "ran.txt"
    return marker.read_text().split() if marker.exists() else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def harness_env(
    tmp_path: Path,
    *,
    block: Sequence[str] = (),
    review: Sequence[str] = (),
    variant: str | None = None,
) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH")) if p)
    env["UPSTREAM_MARKER"] = str(tmp_path / "ran.txt")
    env["GK_TEST_BLOCK"] = ",".join(block)
    env["GK_TEST_REVIEW"] = ",".join(review)
    env.pop("UPSTREAM_VARIANT", None)
    if variant:
        env["UPSTREAM_VARIANT"] = variant
    return env


def proxy_args(
    tmp_path: Path,
    config: dict[str, Any] | None = None,
    *,
    backend: str = "gk_mcp_test_policy:make_backend",
    upstream: Sequence[str] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    config_file = tmp_path / "tools.yaml"
    config_file.write_text(yaml.safe_dump(config or {}))
    args = ["-m", "gatekit_mcp", "proxy", "--config", str(config_file)]
    args += ["--pins", str(tmp_path / "pins.json"), "--backend-factory", backend, *extra]
    if upstream is None:
        upstream = [sys.executable, str(UPSTREAM)]
    return [*args, "--", *upstream] if upstream else args


@asynccontextmanager
async def session_for(command_args: list[str], env: dict[str, str]) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=sys.executable, args=command_args, env=env)
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


@asynccontextmanager
async def http_session(url: str, **options: Any) -> AsyncIterator[ClientSession]:
    """A real MCP client session over streamable HTTP (``options`` go to ClientSession)."""
    async with (
        http_upstream(url) as (read, write),
        ClientSession(read, write, **options) as session,
    ):
        await session.initialize()
        yield session


@asynccontextmanager
async def direct(tmp_path: Path, **env_options: Any) -> AsyncIterator[ClientSession]:
    async with session_for([str(UPSTREAM)], harness_env(tmp_path, **env_options)) as session:
        yield session


@asynccontextmanager
async def proxied(
    tmp_path: Path,
    config: dict[str, Any] | None = None,
    *,
    backend: str = "gk_mcp_test_policy:make_backend",
    **env_options: Any,
) -> AsyncIterator[ClientSession]:
    args = proxy_args(tmp_path, config, backend=backend)
    async with session_for(args, harness_env(tmp_path, **env_options)) as session:
        yield session


@asynccontextmanager
async def gating_proxy(
    tmp_path: Path, backend: Any, config: dict[str, Any] | None = None, **env: Any
) -> AsyncIterator[GatingProxy]:
    """A ``GatingProxy`` in this process, connected to the upstream test server over stdio."""
    transport = stdio_upstream([sys.executable, str(UPSTREAM)], harness_env(tmp_path, **env))
    async with connect(transport) as upstream:
        yield GatingProxy(
            upstream,
            AsyncClient(backend),
            ProxyConfig.model_validate(config or {}),
            PinStore(tmp_path / "pins.json"),
        )
    assert wait_for_reports(), "outcome reports still queued"  # tests read them next


def call(name: str, **arguments: Any) -> ToolCall:
    """A ``tools/call`` from the client named ``test-host``."""
    return ToolCall(name=name, arguments=arguments, client_name="test-host")


def text(result: dict[str, Any]) -> str:
    return " ".join(block["text"] for block in result["content"])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited early with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port}")


@contextmanager
def running(args: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, *args], env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
