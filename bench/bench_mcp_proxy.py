"""Per-call latency of an MCP tool call over stdio: direct, through a pass-through
proxy, and through the gatekit gating proxy; and the gating proxy over
streamable HTTP, where one client pings while another reads a large result.

    uv run --no-sync python bench/bench_mcp_proxy.py [--calls 200] [--megabytes 5]

All setups use real processes talking MCP. The pass-through proxy is the same
proxy code with no governance (``gatekit_mcp.Forwarder``), so the difference
between it and the gating proxy is the gate itself: the decision (embedded
engine, durable SQLite store in a temporary data dir, default policy: a
low-risk tool is allowed), pin check, result shields and outcome report. Also
prints the gate's cost measured in-process (no IPC noise). Prints numbers;
asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
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
            # The whole environment: the proxies' data dir is the bench's own.
            params = StdioServerParameters(command=sys.executable, args=args, env=dict(os.environ))
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


async def wait_for_port(port: int, timeout: float = 60) -> None:
    with anyio.fail_after(timeout):
        while True:
            try:
                stream = await anyio.connect_tcp("127.0.0.1", port)
            except OSError:
                await anyio.sleep(0.1)
            else:
                await stream.aclose()
                return


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def timed_ping(session: Any) -> float:
    start = time.perf_counter()
    await session.send_ping()
    return (time.perf_counter() - start) * 1000


async def ping_until_a_line(session: Any, lines: Any) -> list[float]:
    """Ping every 5 ms until a line arrives on ``lines``; the latencies (ms)."""
    samples: list[float] = []
    told = anyio.Event()

    async def until_told() -> None:
        await lines.readline()
        told.set()

    async with anyio.create_task_group() as group:
        group.start_soon(until_told)
        while not told.is_set():
            samples.append(await timed_ping(session))
            await anyio.sleep(0.005)
    return samples


async def ping_when_told(url: str) -> None:
    """Client B, in a process of its own: a client that reads a large result spends
    a while parsing it, which must not hold up the pings being measured.

    Says ``ready`` once its session is open; then for each line on stdin:
    ``idle N`` pings N times, ``busy`` pings (every 5 ms) until the next line;
    either way it prints the latencies (ms) as one JSON line."""
    from gatekit_mcp._compat import http_upstream
    from mcp import ClientSession

    commands = anyio.wrap_file(sys.stdin)
    async with http_upstream(url) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        print("ready", flush=True)
        while command := (await commands.readline()).split():
            samples: list[float] = []
            if command[0] == "idle":
                samples = [await timed_ping(session) for _ in range(int(command[1]))]
            else:
                samples = await ping_until_a_line(session, commands)
            print(json.dumps(samples), flush=True)


async def pings_while_reading(
    gating: list[str], megabytes: int, reads: int, idle_pings: int = 200, stderr: Any = None
) -> tuple[list[float], list[float], list[float]]:
    """Two clients of one gating proxy over streamable HTTP (each with its own upstream
    session, each in its own process): client B pings while client A reads
    ``megabytes`` MB of text, ``reads`` times. Returns B's ping latencies with A
    idle and while A reads, and A's read times (ms)."""
    from anyio.streams.buffered import BufferedByteReceiveStream
    from gatekit_mcp._compat import http_upstream
    from mcp import ClientSession

    port = free_port()
    args = [*gating[: gating.index("--")], "--transport", "http", "--port", str(port)]
    args += gating[gating.index("--") :]
    url = f"http://127.0.0.1:{port}/mcp"
    quiet = stderr if stderr is not None else subprocess.DEVNULL
    read_times: list[float] = []
    async with AsyncExitStack() as stack:
        proxy = await stack.enter_async_context(
            await anyio.open_process(
                [sys.executable, *args], stdin=subprocess.DEVNULL, stdout=quiet, stderr=quiet
            )
        )
        stack.push_async_callback(stopped, proxy)
        await wait_for_port(port)
        pinger = await stack.enter_async_context(
            await anyio.open_process([sys.executable, ME, "--pinger", url], stderr=quiet)
        )
        stack.push_async_callback(stopped, pinger)
        assert pinger.stdin is not None and pinger.stdout is not None
        said = BufferedByteReceiveStream(pinger.stdout)

        async def heard() -> bytes:
            with anyio.fail_after(300):
                return await said.receive_until(b"\n", 10_000_000)

        read, write = await stack.enter_async_context(http_upstream(url))
        reader = await stack.enter_async_context(ClientSession(read, write))
        await reader.initialize()
        await reader.call_tool("read_log", {"megabytes": 1})  # warm-up
        assert await heard() == b"ready"
        await pinger.stdin.send(f"idle {idle_pings}\n".encode())
        idle = json.loads(await heard())
        await pinger.stdin.send(b"busy\n")
        await anyio.sleep(0.2)  # its first pings go out before A starts
        for _ in range(reads):
            start = time.perf_counter()
            await reader.call_tool("read_log", {"megabytes": megabytes})
            read_times.append((time.perf_counter() - start) * 1000)
        await pinger.stdin.send(b"stop\n")
        busy = json.loads(await heard())
    return idle, busy, read_times


async def stopped(process: Any) -> None:
    """Terminate ``process`` and wait for it (bounded; killed after)."""
    if process.returncode is None:
        process.terminate()
    with anyio.move_on_after(20):
        await process.wait()
    if process.returncode is None:
        process.kill()


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def describe_pings(name: str, samples: list[float]) -> float:
    p99 = percentile(samples, 0.99)
    print(
        f"{name:<26} p50 {statistics.median(samples):7.3f} ms   p99 {p99:7.3f} ms   "
        f"max {max(samples):7.3f} ms   (n={len(samples)})"
    )
    return p99


def describe(name: str, samples: list[float]) -> float:
    p50 = statistics.median(samples)
    p90 = statistics.quantiles(samples, n=10)[-1]
    print(f"{name:<26} p50 {p50:7.3f} ms   p90 {p90:7.3f} ms   (n={len(samples)})")
    return p50


PARTS = ("echo", "large", "http", "gate")


async def bench(calls: int, megabytes: int, parts: set[str]) -> None:
    import importlib.metadata

    upstream = [ME, "--serve-upstream"]
    print(f"mcp {importlib.metadata.version('mcp')}, load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        # Decisions, audit and pins of every proxy (and of the in-process gate) here.
        os.environ["GATEKIT_DATA_DIR"] = str(Path(tmp) / "gatekit")
        config = Path(tmp) / "tools.yaml"
        config.write_text("default: {risk_level: low, operation_class: read}\n")
        gating = ["-m", "gatekit_mcp", "proxy", "--config", str(config)]
        gating += ["--pins", str(Path(tmp) / "pins.json"), "--", sys.executable, *upstream]
        passthrough = [ME, "--passthrough", "--", sys.executable, *upstream]
        setups = {"direct": upstream, "pass-through proxy": passthrough, "gating proxy": gating}
        names = list(setups)
        if "echo" in parts:
            print(f"an echo tool call, {calls} calls each, stdio, interleaved:")
            samples = await measure(setups, calls)
            direct, plain, gated = (describe(name, samples[name]) for name in names)
            paired = statistics.median(
                g - p for g, p in zip(samples[names[2]], samples[names[1]], strict=True)
            )
            print(f"proxy hop adds {plain - direct:+.3f} ms p50 over direct")
            print(f"the gate adds  {gated - plain:+.3f} ms p50 over the pass-through proxy")
            print(f"median of per-round differences gating - pass-through: {paired:+.3f} ms")
            print("  (target: the gate adds <= 0.3 ms p50)")
        if "large" in parts:
            print(f"a {megabytes} MB text result (read_log), 5 calls each, result shields on:")
            large = await measure(
                setups, 5, warmup=1, tool="read_log", arguments={"megabytes": megabytes}
            )
            big_direct, _, big_gated = (describe(f"  {name}", large[name]) for name in names)
            print(f"  gating / direct: {big_gated / big_direct:.2f}x (target <= 1.5x)")
        if "http" in parts:
            print(
                f"streamable HTTP, gating proxy: client B pings while client A reads "
                f"{megabytes} MB, 3 times:"
            )
            idle, busy, read_times = await pings_while_reading(gating, megabytes, reads=3)
            describe_pings("  ping, A idle", idle)
            p99 = describe_pings(f"  ping, A reading {megabytes} MB", busy)
            print(f"  A's reads: {', '.join(f'{t:.0f}' for t in read_times)} ms")
            print(f"  ping p99 while A reads: {p99:.1f} ms (target <= 50 ms)")
        if "gate" in parts:
            describe("gate alone (in-process)", await gate_in_process(calls))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--megabytes", type=int, default=5)
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, of: {', '.join(PARTS)}"
    )
    parser.add_argument("--serve-upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--passthrough", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pinger", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("command", nargs="*", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.serve_upstream:
        serve_upstream()
    elif options.pinger:
        anyio.run(ping_when_told, options.pinger)
    elif options.passthrough:
        anyio.run(serve_passthrough, options.command)
    else:
        parts = set(options.parts.split(","))
        unknown = parts - set(PARTS)
        if unknown:
            parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
        anyio.run(bench, options.calls, options.megabytes, parts)


if __name__ == "__main__":
    main()
