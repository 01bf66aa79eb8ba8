"""The ``gatekit-mcp`` command.

gatekit-mcp proxy --policy policy.yaml --config tools.yaml -- python my_server.py
gatekit-mcp proxy --upstream-url http://127.0.0.1:9000/mcp --transport http --port 8800
gatekit-mcp pins list | pins approve TOOL | pins reset TOOL
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from gatekit import AsyncClient, Backend, ConfigurationError
from gatekit_mcp._compat import http_upstream, stdio_upstream
from gatekit_mcp.config import ProxyConfig
from gatekit_mcp.pins import PinStore
from gatekit_mcp.proxy import run_proxy

app = typer.Typer(add_completion=False, no_args_is_help=True, help="gatekit for MCP.")
pins_app = typer.Typer(no_args_is_help=True, help="Inspect and approve pinned tool definitions.")
app.add_typer(pins_app, name="pins")


class Transport(StrEnum):
    STDIO = "stdio"
    HTTP = "http"


def _fail(message: str) -> typer.Exit:
    typer.echo(f"gatekit-mcp: {message}", err=True)
    return typer.Exit(2)


def _use_policy_file(policy: Path) -> None:
    """Hand the policy file to the core's embedded engine through ``GATEKIT_POLICY``."""
    if not policy.is_file():
        raise _fail(f"policy file not found: {policy}")
    os.environ["GATEKIT_POLICY"] = str(policy.resolve())


def _backend_from(factory: str) -> Backend:
    module_name, _, attr = factory.partition(":")
    if not module_name or not attr:
        raise _fail(f"--backend-factory must look like 'module:callable', got {factory!r}")
    backend = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(backend, Backend):
        raise _fail(f"{factory} returned {type(backend).__name__}, not a gatekit Backend")
    return backend


@app.command()
def proxy(
    upstream_command: Annotated[
        list[str] | None, typer.Argument(help="Upstream server command, after --")
    ] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy file (GATEKIT_POLICY).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="Tool config (YAML): tool name -> action fields.")
    ] = None,
    pins: Annotated[
        Path | None,
        typer.Option(help="Where tool pins are kept [default: $GATEKIT_DATA_DIR/mcp-pins.json]."),
    ] = None,
    upstream_url: Annotated[
        str | None, typer.Option(help="Streamable HTTP URL of the upstream server.")
    ] = None,
    transport: Annotated[Transport, typer.Option(help="How to serve clients.")] = Transport.STDIO,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    path: Annotated[str, typer.Option(help="HTTP path of the MCP endpoint.")] = "/mcp",
    agent_id: Annotated[str | None, typer.Option(help="Agent identity on every action.")] = None,
    backend_factory: Annotated[
        str | None,
        typer.Option(help="'module:callable' returning a gatekit Backend (default: embedded)."),
    ] = None,
) -> None:
    """Serve a gating proxy in front of an upstream MCP server."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    command = list(upstream_command or [])
    if bool(command) == bool(upstream_url):
        raise _fail("give exactly one upstream: a command after -- or --upstream-url")
    try:
        if policy is not None:
            _use_policy_file(policy)
        proxy_config = ProxyConfig.load(config)
        pin_store = PinStore(pins) if proxy_config.pins.enabled else None
        backend = _backend_from(backend_factory) if backend_factory else None
        client = AsyncClient(backend, agent_id=agent_id)
    except ConfigurationError as error:
        raise _fail(str(error)) from None
    # The upstream sees the environment it would see if the host started it directly.
    upstream: Any = (
        stdio_upstream(command, os.environ) if command else http_upstream(str(upstream_url))
    )
    try:
        anyio.run(
            lambda: run_proxy(
                upstream,
                client,
                proxy_config,
                pin_store,
                serve=transport.value,
                host=host,
                port=port,
                path=path,
            )
        )
    except KeyboardInterrupt:
        pass
    except Exception as error:  # one line for the operator; the traceback at debug level
        logging.getLogger("gatekit_mcp").debug("proxy failed", exc_info=True)
        typer.echo(f"gatekit-mcp: the proxy stopped: {_root_cause(error)}", err=True)
        raise typer.Exit(1) from None


def _root_cause(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


PinsOption = Annotated[
    Path | None,
    typer.Option("--pins", help="The pins file [default: $GATEKIT_DATA_DIR/mcp-pins.json]."),
]


def _store(pins: Path | None) -> PinStore:
    try:
        return PinStore(pins)
    except ConfigurationError as error:
        raise _fail(str(error)) from None


@pins_app.command("list")
def pins_list(pins: PinsOption = None) -> None:
    """Show every pinned tool, and which ones changed."""
    for server, tool, entry in _store(pins).entries():
        changed = entry.get("observed")
        state = f"CHANGED -> {changed['digest'][:12]}" if changed else "ok"
        typer.echo(f"{server}\t{tool}\t{entry['digest'][:12]}\t{state}")


@pins_app.command("approve")
def pins_approve(
    tool: str,
    server: Annotated[str | None, typer.Option(help="Server, if the tool is on several.")] = None,
    pins: PinsOption = None,
) -> None:
    """Trust the changed definition of TOOL."""
    try:
        digest = _store(pins).approve(tool, server)
    except KeyError as error:
        raise _fail(str(error.args[0])) from None
    typer.echo(f"approved {tool}: now pinned to {digest[:12]}")


@pins_app.command("reset")
def pins_reset(
    tool: str,
    server: Annotated[str | None, typer.Option()] = None,
    pins: PinsOption = None,
) -> None:
    """Forget TOOL's pin; the next definition seen is pinned afresh."""
    try:
        _store(pins).remove(tool, server)
    except KeyError as error:
        raise _fail(str(error.args[0])) from None
    typer.echo(f"removed the pin of {tool}")


def main() -> None:
    app()
