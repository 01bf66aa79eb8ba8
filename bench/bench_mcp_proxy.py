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
import os
import random
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

    @server.tool()
    def read_log(megabytes: int) -> str:
        """Ordinary log text, ``megabytes`` MB of it."""
        line = "2026-12-01 12:00:00 INFO worker 7 finished job 1234 in 0.25 s\n"
        return line * (megabytes * 1_000_000 // len(line))

    server.run()


async def serve_passthrough(command: list[str]) -> None:
    from gatekit_mcp import Forwarder, ProxyConfig
    from gatekit_mcp._compat import stdio_upstream
    from gatekit_mcp.serving import serve_stdio

    await serve_stdio(lambda: stdio_upstream(command), Forwarder, ProxyConfig())


def proxy_cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by each proxy process we started, by kind.

    Latency on a shared machine mixes in other processes' load; CPU time spent
    inside the proxy process is what the proxy itself costs. Linux /proc only.
    """
    used: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError):
            continue
        if int(fields[1]) != os.getpid():  # fields[1] is the parent pid
            continue
        kind = "gating proxy" if "gatekit_mcp" in command else None
        kind = "pass-through proxy" if "--passthrough" in command else kind
        if kind:
            used[kind] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return used


async def measure(
    setups: dict[str, list[str]],
    calls: int,
    warmup: int = 20,
    tool: str = "echo",
    arguments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Open one session per setup, then take turns (one call each, in a shuffled
    order per round), so that load from other processes hits every setup alike."""
    arguments = arguments if arguments is not None else {"text": "hello"}
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
                await session.call_tool(tool, arguments)
        order = list(sessions.items())
        cpu_before = proxy_cpu_seconds()
        for _ in range(calls):
            random.shuffle(order)  # no setup always runs right after the same other one
            for name, session in order:
                start = time.perf_counter()
                await session.call_tool(tool, arguments)
                samples[name].append((time.perf_counter() - start) * 1000)
        cpu_after = proxy_cpu_seconds()
    for kind, seconds in cpu_after.items():
        per_call = (seconds - cpu_before.get(kind, 0.0)) / calls * 1000
        print(f"{kind:<26} CPU {per_call:6.3f} ms per call (user + system, in the proxy process)")
    return samples


async def gate_in_process(calls: int) -> list[float]:
    """What the gating proxy does around the upstream call, without any I/O: the pin
    check, the decision, the result shields and the report, for the echo result."""
    from gatekit_mcp import PinStore, ProxyConfig, ToolGate
    from gatekit_mcp._compat import ToolCall

    from gatekit import AsyncClient

    config = ProxyConfig.model_validate({"default": {"risk_level": "low"}})
    gate = ToolGate(AsyncClient(), config, server_name="bench-upstream")
    tool = {"name": "echo", "description": "Echo the text back.", "inputSchema": {}}
    result = {
        "content": [{"type": "text", "text": "hello"}],
        "structuredContent": {"result": "hello"},
        "isError": False,
    }

    async def run() -> dict[str, Any]:
        return result

    call = ToolCall(name="echo", arguments={"text": "hello"}, client_name="bench")
    with tempfile.TemporaryDirectory() as tmp:
        pins = PinStore(Path(tmp) / "pins.json")
        samples = []
        for index in range(50 + calls):
            start = time.perf_counter()
            await gate.call(call, run, pin=pins.check("bench-upstream", tool, "d" * 64))
            if index >= 50:  # after a warm-up
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
        config.write_text("default: {risk_level: low, operation_class: read}\n")
        gating = ["-m", "gatekit_mcp", "proxy", "--config", str(config)]
        gating += ["--pins", str(Path(tmp) / "pins.json"), "--", sys.executable, *upstream]
        passthrough = [ME, "--passthrough", "--", sys.executable, *upstream]
        print(f"mcp {importlib.metadata.version('mcp')}, {calls} calls each, stdio, interleaved")
        setups = {"direct": upstream, "pass-through proxy": passthrough, "gating proxy": gating}
        samples = await measure(setups, calls)
        names = list(setups)
        direct, plain, gated = (describe(name, samples[name]) for name in names)
        print("a 5 MB text result (read_log), 5 calls each, with the result shields on:")
        large = await measure(setups, 5, warmup=1, tool="read_log", arguments={"megabytes": 5})
        big_direct, _, big_gated = (describe(f"  {name}", large[name]) for name in names)
        print(f"  gating / direct: {big_gated / big_direct:.2f}x (target <= 1.5x)")
    inner = describe("gate alone (in-process)", await gate_in_process(calls))
    print(f"proxy hop adds {plain - direct:+.3f} ms p50 over direct")
    print(f"the gate adds  {gated - plain:+.3f} ms p50 over the pass-through proxy (target <= 0.3)")
    paired = statistics.median(
        g - p for g, p in zip(samples[names[2]], samples[names[1]], strict=True)
    )
    print(f"median of per-round differences gating - pass-through: {paired:+.3f} ms")
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
