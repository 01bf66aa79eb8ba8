"""Run the gating proxy: over stdio (one client, one upstream) or streamable HTTP
(a session and an upstream session per client)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from functools import partial
from typing import Literal

import anyio
from anyio.abc import TaskStatus

from gatekit import AsyncClient
from gatekit_mcp._compat import Streams, stdio_server_streams
from gatekit_mcp.config import ProxyConfig
from gatekit_mcp.http_sessions import HttpSessions, serve_http
from gatekit_mcp.pins import PinStore
from gatekit_mcp.proxy import GatingProxy
from gatekit_mcp.session import Governance, ProxySession, UpstreamLost, UpstreamOpener
from gatekit_mcp.upstream import Upstream

__all__ = ["governance", "run_proxy", "serve_stdio", "until_terminated"]

logger = logging.getLogger("gatekit_mcp")


def governance(client: AsyncClient, config: ProxyConfig, pins: PinStore | None) -> Governance:
    """A ``GatingProxy`` for each upstream session; they share the client and pins."""

    def govern(upstream: Upstream) -> GatingProxy:
        return GatingProxy(upstream, client, config, pins)

    return govern


async def _hold_upstream(
    open_upstream: UpstreamOpener, *, task_status: TaskStatus[Streams]
) -> None:
    """Keep the upstream transport open in a task of its own, so that when it fails
    (a dropped HTTP connection) it closes its streams, and the session answers the
    requests in flight, instead of being cancelled along with the transport."""
    started = False
    try:
        async with open_upstream() as streams:
            task_status.started(streams)
            started = True
            await anyio.sleep_forever()
    except Exception as error:
        if not started:
            raise  # it could not start: the proxy stops with this error
        logger.error("gatekit: the connection to the upstream failed: %s", _root_cause(error))


async def serve_stdio(
    open_upstream: UpstreamOpener, govern: Governance, config: ProxyConfig
) -> None:
    """Serve the client on this process's stdin/stdout until it leaves.

    The upstream is started first, so a command that cannot start fails before
    the client is served; it is initialized when the client initializes.
    ``UpstreamLost`` when it goes away first (the caller exits non-zero)."""
    lost: UpstreamLost | None = None
    async with anyio.create_task_group() as group:
        upstream_streams = await group.start(_hold_upstream, open_upstream)
        async with stdio_server_streams() as (streams, stdin):
            session = ProxySession(
                streams,
                open_upstream=lambda: nullcontext(upstream_streams),
                govern=govern,
                config=config,
            )
            try:
                await session.run()
            except UpstreamLost as error:
                lost = error
            finally:
                stdin.stop()  # the transport ends once its last answers are written
        group.cancel_scope.cancel()
    if lost is not None:
        raise lost


def _root_cause(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


async def until_terminated(serve: Callable[[], Awaitable[None]]) -> None:
    """``serve()``, stopped by SIGTERM as it is by the end of its input: it returns,
    so that the caller reports queued outcomes and closes its client (the last
    audit checkpoint) before the process exits. A host ends a stdio server with
    SIGTERM when closing its stdin did not end it (MCP's shutdown sequence)."""
    async with anyio.create_task_group() as group:

        async def on_sigterm() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM) as signals:
                async for _signal in signals:
                    logger.warning("gatekit: SIGTERM: the proxy stops")
                    group.cancel_scope.cancel()

        group.start_soon(on_sigterm)
        await serve()
        group.cancel_scope.cancel()


async def run_proxy(
    open_upstream: UpstreamOpener,
    client: AsyncClient,
    config: ProxyConfig,
    pins: PinStore | None,
    *,
    serve: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    max_sessions: int = 100,
) -> None:
    """Serve the gating proxy in front of the upstreams ``open_upstream`` opens.
    Over stdio, SIGTERM ends it like the end of its input (from the main thread)."""
    govern = governance(client, config, pins)
    if serve == "http":  # uvicorn stops on SIGTERM by itself
        sessions = HttpSessions(open_upstream, govern, config, host=host, max_sessions=max_sessions)
        await serve_http(sessions, host, port, path)
    elif threading.current_thread() is threading.main_thread():
        await until_terminated(partial(serve_stdio, open_upstream, govern, config))
    else:  # signals reach the main thread only
        await serve_stdio(open_upstream, govern, config)
