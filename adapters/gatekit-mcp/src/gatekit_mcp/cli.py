"""The ``gatekit-mcp`` command.

gatekit-mcp proxy --policy policy.yaml --config tools.yaml -- python my_server.py
gatekit-mcp proxy --policy policy.yaml --upstream "python my_server.py"
gatekit-mcp proxy --upstream-url http://127.0.0.1:9000/mcp --transport http --port 8800
gatekit-mcp pins list | pins approve TOOL | pins reset TOOL

Errors end in one ``error: …`` line (exit 2: usage or configuration, 1: failure);
``gatekit-mcp --debug …`` shows the traceback instead.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shlex
import sys
from enum import StrEnum
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

import gatekit
from gatekit import AsyncClient, Backend
from gatekit.adapters import settings
from gatekit.cli import App, fail, short_id
from gatekit_mcp._compat import http_upstream, stdio_upstream
from gatekit_mcp.config import ProxyConfig
from gatekit_mcp.pins import PinStore
from gatekit_mcp.reports import wait_for_reports
from gatekit_mcp.serving import run_proxy

NOT_FOUND = 1  # exit code when a named pin does not exist (2 is for usage errors)


def _version() -> str:
    try:
        mine = installed_version("gatekit-mcp")
    except PackageNotFoundError:  # a source tree that is not installed
        mine = "0.0.0"
    return f"gatekit-mcp {mine} (gatekit-core {gatekit.__version__})"


app = App(
    name="gatekit-mcp",
    add_completion=False,
    no_args_is_help=True,
    help="gatekit for MCP.",
    version=_version(),
)
pins_app = App(no_args_is_help=True, help="Inspect and approve pinned tool definitions.")
app.add_typer(pins_app, name="pins")


class Transport(StrEnum):
    STDIO = "stdio"
    HTTP = "http"


def _use_policy_file(policy: Path) -> None:
    """Hand the policy file to the core's embedded engine through ``GATEKIT_POLICY``."""
    if not policy.is_file():
        fail(f"policy file not found: {policy}")
    os.environ["GATEKIT_POLICY"] = str(policy.resolve())


def _backend_from(factory: str) -> Backend:
    module_name, _, attr = factory.partition(":")
    if not module_name or not attr:
        fail(f"--backend-factory must look like 'module:callable', got {factory!r}")
    try:
        make_backend = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        fail(f"--backend-factory {factory}: {error}")
    backend = make_backend()
    if not isinstance(backend, Backend):
        fail(f"{factory} returned {type(backend).__name__}, not a gatekit Backend")
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
        typer.Option(help="Where tool pins are kept (default: $GATEKIT_DATA_DIR/mcp-pins.json)."),
    ] = None,
    upstream: Annotated[
        str | None,
        typer.Option(
            "--upstream",
            help="Upstream server command line, as one string (instead of -- COMMAND).",
        ),
    ] = None,
    upstream_url: Annotated[
        str | None, typer.Option(help="Streamable HTTP URL of the upstream server.")
    ] = None,
    transport: Annotated[Transport, typer.Option(help="How to serve clients.")] = Transport.STDIO,
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    path: Annotated[str, typer.Option(help="HTTP path of the MCP endpoint.")] = "/mcp",
    max_sessions: Annotated[
        int, typer.Option(min=1, help="HTTP: client sessions open at once (each has an upstream).")
    ] = 100,
    agent_id: Annotated[str | None, typer.Option(help="Agent identity on every action.")] = None,
    backend_factory: Annotated[
        str | None,
        typer.Option(help="'module:callable' returning a gatekit Backend (default: embedded)."),
    ] = None,
) -> None:
    """Serve a gating proxy in front of an upstream MCP server."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
    if policy is not None:
        _use_policy_file(policy)
    # Configuration and policy errors surface here, before any upstream starts.
    proxy_config = ProxyConfig.load(config)
    command = _upstream_command(upstream_command, upstream, upstream_url, proxy_config)
    pin_store = PinStore(pins) if proxy_config.pins.enabled else None
    backend = _backend_from(backend_factory) if backend_factory else None
    client = AsyncClient(backend, agent_id=agent_id)
    if policy is None:
        _say_which_policy(proxy_config, backend_factory)

    # The upstream sees the environment it would see if the host started it directly.
    # Each client session gets its own upstream session (a process, or an HTTP session).
    def open_upstream() -> Any:
        if command:
            return stdio_upstream(command, os.environ)
        return http_upstream(str(upstream_url))

    try:
        anyio.run(
            lambda: run_proxy(
                open_upstream,
                client,
                proxy_config,
                pin_store,
                serve=transport.value,
                host=host,
                port=port,
                path=path,
                max_sessions=max_sessions,
            )
        )
    except KeyboardInterrupt:
        pass
    except Exception as error:  # one line for the operator; --debug shows the traceback
        fail(f"the proxy stopped: {_root_cause(error)}", code=1)
    finally:
        # Outcome reports still queued go out first; then the client writes its
        # queued outcome records and the last audit checkpoint, whatever its backend.
        wait_for_reports()
        anyio.run(client.aclose)


def _upstream_command(
    after_dashes: list[str] | None,
    command_line: str | None,
    url: str | None,
    config: ProxyConfig,
) -> list[str]:
    """The upstream command (empty for ``--upstream-url``): from exactly one of
    ``-- COMMAND``, ``--upstream`` and ``--upstream-url``, else the config's
    ``upstream:`` (how MCP Inspector's ``--config`` mode can start the proxy)."""
    given = [bool(after_dashes), command_line is not None, url is not None]
    if sum(given) > 1:
        fail("give exactly one upstream: a command after --, --upstream or --upstream-url")
    if after_dashes:
        return list(after_dashes)
    if command_line is not None:
        try:
            command = shlex.split(command_line)
        except ValueError as error:
            fail(f"--upstream: {error}")
        if not command:
            fail("--upstream is empty")
        return command
    if url is not None:
        return []
    command = config.upstream_command()
    if not command:
        fail(
            "give exactly one upstream: a command after --, --upstream, --upstream-url "
            "or upstream: in the --config file"
        )
    return command


def _say_which_policy(config: ProxyConfig, backend_factory: str | None) -> None:
    """Without --policy, say on stderr what decides and how a review is approved
    (stdout is the MCP channel)."""
    if backend_factory is not None:
        notice = f"decisions come from the backend of --backend-factory {backend_factory}"
    elif os.environ.get("GATEKIT_POLICY"):
        notice = f"the policy is GATEKIT_POLICY={os.environ['GATEKIT_POLICY']}"
    else:
        notice = (
            "the built-in default policy applies: low-risk tool calls run, every other "
            "call needs a human review (tools are medium risk unless --config says otherwise)"
        )
    if config.on_review == "wait":
        waits = f"a call waiting for review is held up to {config.review_timeout:g} s"
    else:
        waits = "a call waiting for review is refused at once; retried once approved, it runs"
    data_dir = settings().data_dir
    typer.echo(
        f"gatekit-mcp: no --policy given: {notice}. Reviews: {waits}; approve with "
        f"`gatekit approvals list` then `gatekit approvals approve ID` "
        f"(data dir {data_dir}).",
        err=True,
    )


def _root_cause(error: BaseException) -> str:
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return f"{type(error).__name__}: {error}"


PinsOption = Annotated[
    Path | None,
    typer.Option("--pins", help="The pins file (default: $GATEKIT_DATA_DIR/mcp-pins.json)."),
]


@pins_app.command("list")
def pins_list(
    pins: PinsOption = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON document: a list of pins, with full digests."),
    ] = False,
) -> None:
    """Show every pinned tool, and which ones changed."""
    store = PinStore(pins)
    entries = store.entries()
    if as_json:
        typer.echo(json.dumps([_pin_as_json(*entry) for entry in entries], indent=2))
        return
    out = Console(highlight=False)
    if not entries:
        out.print(f"no pinned tools in {store.path}", markup=False, soft_wrap=True)
        return
    out.print(f"pinned tools in {store.path}", markup=False, soft_wrap=True)
    out.print(_pins_table(entries))


def _pin_as_json(server: str, tool: str, entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "server": server,
        "tool": tool,
        "state": "changed" if entry.get("observed") else "ok",
        **entry,
    }


def _pins_table(entries: list[tuple[str, str, dict[str, Any]]]) -> Table:
    # The same compact style as `gatekit approvals list`; digests shortened like ids.
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0))
    table.add_column("server", overflow="fold")
    table.add_column("tool", overflow="fold")
    table.add_column("pinned", no_wrap=True)
    table.add_column("state", overflow="fold")
    for server, tool, entry in entries:
        changed = entry.get("observed")
        state = f"CHANGED to {short_id(changed['digest'])}" if changed else "ok"
        cells = (server, tool, short_id(entry["digest"]), state)
        table.add_row(*(Text(cell) for cell in cells), style="yellow" if changed else None)
    return table


@pins_app.command("approve")
def pins_approve(
    tool: str,
    server: Annotated[str | None, typer.Option(help="Server, if the tool is on several.")] = None,
    pins: PinsOption = None,
) -> None:
    """Trust the changed definition of TOOL."""
    try:
        digest = PinStore(pins).approve(tool, server)
    except KeyError as error:
        fail(str(error.args[0]), code=NOT_FOUND)
    typer.echo(f"approved {tool}: now pinned to {short_id(digest)}")


@pins_app.command("reset")
def pins_reset(
    tool: str,
    server: Annotated[str | None, typer.Option()] = None,
    pins: PinsOption = None,
) -> None:
    """Forget TOOL's pin; the next definition seen is pinned afresh."""
    try:
        PinStore(pins).remove(tool, server)
    except KeyError as error:
        fail(str(error.args[0]), code=NOT_FOUND)
    typer.echo(f"removed the pin of {tool}")


def main() -> None:
    app()
