"""Per-call latency of an MCP tool call over stdio: direct, through a pass-through
proxy, and through the gatekit gating proxy.

    uv run --no-sync python bench/bench_mcp_proxy.py [--calls 200]

All three use real processes talking MCP over stdio. The pass-through proxy is
the same proxy code with no governance (``gatekit_mcp.Forwarder``), so the
difference between it and the gating proxy is the gate itself: the decision
(embedded engine, default policy: a low-risk tool is allowed), pin check,
result shields and outcome report. Also prints the gate's cost measured
in-process (no IPC noise). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import anyio

ME = str(Path(__file__).resolve())


def serve_upstream() -> None:
    try:
        from mcp.server.fastmcp import FastMCP as Server
    except ModuleNotFoundError:  # mcp 2.x
        from mcp.server.mcpserver import MCPServer as Server  # type: ignore[no-redef]
    import logging

    logging.disable(logging.INFO)
    server = Server("bench-upstream")

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    server.run()


async def serve_passthrough(command: list[str]) -> None:
    from gatekit_mcp import Forwarder
    from gatekit_mcp._compat import connect, serve_stdio, stdio_upstream

    async with connect(stdio_upstream(command)) as upstream:
        await serve_stdio(Forwarder(upstream).server())


async def measure(setups: dict[str, list[str]], calls: int, warmup: int = 20) -> dict[str, Any]:
    """Open one session per setup, then take turns (one call each, round robin), so
    that load from other processes on the machine hits every setup alike."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    samples: dict[str, list[float]] = {name: [] for name in setups}
    async with AsyncExitStack() as stack:
        sessions = {}
        for name, args in setups.items():
            params = StdioServerParameters(command=sys.executable, args=args)
            read, write = await stack.enter_async_context(stdio_client(params))
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            await session.list_tools()
            sessions[name] = session
        for _ in range(warmup):
            for session in sessions.values():
                await session.call_tool("echo", {"text": "hello"})
        for _ in range(calls):
            for name, session in sessions.items():
                start = time.perf_counter()
                await session.call_tool("echo", {"text": "hello"})
                samples[name].append((time.perf_counter() - start) * 1000)
    return samples


async def gate_in_process(calls: int) -> list[float]:
    from gatekit_mcp import ProxyConfig, ToolGate
    from gatekit_mcp._compat import ToolCall

    from gatekit import AsyncClient

    config = ProxyConfig.model_validate({"defaults": {"risk_level": "low"}})
    gate = ToolGate(AsyncClient(), config, server_name="bench-upstream")
    result = {"content": [{"type": "text", "text": "hello"}], "isError": False}

    async def run() -> dict[str, Any]:
        return result

    call = ToolCall(name="echo", arguments={"text": "hello"})
    for _ in range(50):
        await gate.call(call, run)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        await gate.call(call, run)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def describe(name: str, samples: list[float]) -> float:
    p50 = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1]
    print(f"{name:<26} p50 {p50:7.3f} ms   p90 {p90:7.3f} ms   (n={len(samples)})")
    return p50


async def bench(calls: int) -> None:
    import importlib.metadata

    upstream = [ME, "--serve-upstream"]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "tools.yaml"
        config.write_text("defaults: {risk_level: low, operation_class: read}\n")
        gating = ["-m", "gatekit_mcp", "proxy", "--config", str(config)]
        gating += ["--pins", str(Path(tmp) / "pins.json"), "--", sys.executable, *upstream]
        passthrough = [ME, "--passthrough", "--", sys.executable, *upstream]
        print(f"mcp {importlib.metadata.version('mcp')}, {calls} calls each, stdio, interleaved")
        setups = {"direct": upstream, "pass-through proxy": passthrough, "gating proxy": gating}
        samples = await measure(setups, calls)
        direct, plain, gated = (describe(name, samples[name]) for name in setups)
    inner = describe("gate alone (in-process)", await gate_in_process(calls))
    print(f"proxy hop adds {plain - direct:+.3f} ms p50 over direct")
    print(f"the gate adds  {gated - plain:+.3f} ms p50 over the pass-through proxy (target <= 0.3)")
    print(f"gate cost measured in-process: {inner:.3f} ms p50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--passthrough", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_upstream:
        serve_upstream()
    elif options.passthrough:
        anyio.run(serve_passthrough, options.command)
    else:
        anyio.run(bench, options.calls)


if __name__ == "__main__":
    main()
