"""``gatekit serve`` and ``gatekit keys create|list|revoke``: the decision server
and the API keys that let agents, reviewers and admins use it."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from gatekit.api_keys import Role, create_key, list_keys, revoke_key
from gatekit.cli._common import (
    FAILURE,
    DatabaseUrl,
    DataDir,
    console,
    error_console,
    fail,
    settings,
)
from gatekit.store import open_store

RoleOption = Annotated[
    Role, typer.Option("--role", help="agent: decide; reviewer: also review; admin: everything.")
]


def create(
    name: Annotated[str, typer.Option("--name", help="Who holds the key (a reviewer's name).")],
    role: RoleOption = Role.AGENT,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key for the server and print it (shown only this once)."""
    store = open_store(settings(data_dir, database_url))
    try:
        token, record = create_key(store, name=name, role=role)
    finally:
        store.close()
    typer.echo(token)  # alone on stdout: KEY=$(gatekit keys create …)
    error_console().print(
        f"{record.role.value} key {record.key_id} for {record.name}; it is not shown again",
        markup=False,
        style="dim",
    )


def list_command(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List the server's API keys (never the keys themselves)."""
    store = open_store(settings(data_dir, database_url))
    try:
        records = list_keys(store)
    finally:
        store.close()
    table = Table("key id", "name", "role", "created", "revoked")
    for record in records:
        table.add_row(
            record.key_id,
            record.name,
            record.role.value,
            _when(record.created_at),
            _when(record.revoked_at),
        )
    console().print(table)


def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (from `gatekit keys list`).")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key: every server refuses it from its next request on."""
    store = open_store(settings(data_dir, database_url))
    try:
        found = revoke_key(store, key_id)
    finally:
        store.close()
    if not found:
        fail(f"no API key {key_id}", FAILURE)
    typer.echo(f"revoked {key_id}")


def _when(moment: float | None) -> str:
    if moment is None:
        return ""
    return datetime.datetime.fromtimestamp(moment, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8800,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="Policy file (default: GATEKIT_POLICY).")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    access_log: Annotated[
        bool, typer.Option(help="Log a line per request (the audit log records decisions).")
    ] = False,
) -> None:
    """Run the decision server: the JSON API under /v1, the review page at /review."""
    try:
        import uvicorn

        from gatekit.server.writer import WRITER_BASE_VARIABLE, writer_base
    except ImportError:
        fail("the server needs its extra: pip install 'gatekit-core[server]'", FAILURE)
    # Workers are fresh processes that read GATEKIT_*: the options travel that way.
    given = {
        "GATEKIT_DATA_DIR": data_dir,
        "GATEKIT_DATABASE_URL": database_url,
        "GATEKIT_POLICY": policy,
    }
    os.environ.update({name: str(value) for name, value in given.items() if value is not None})
    # Each process writes its own audit chain, named after this address unless
    # GATEKIT_WRITER_ID says otherwise (see gatekit.server.writer).
    os.environ[WRITER_BASE_VARIABLE] = writer_base(port)
    config = settings(None, None)  # checks the configuration before anything starts
    where = (config.database_url and "PostgreSQL") or f"SQLite in {config.data_dir}"
    chains = config.writer_id or writer_base(port) + (
        " (/1, /2… per worker)" if workers > 1 else ""
    )
    console().print(
        f"gatekit server on http://{host}:{port} — policy: {config.policy or 'the default'},"
        f" state: {where}, audit chain: {chains}. API: /v1/docs; review page: /review."
        " Create keys with `gatekit keys create --role …`.",
        markup=False,
    )
    uvicorn.run(
        "gatekit.server.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=access_log,
    )
