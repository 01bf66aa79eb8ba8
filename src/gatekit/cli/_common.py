"""Options and helpers shared by the CLI sub-commands that touch durable state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from gatekit._exceptions import GatekitError
from gatekit._settings import Settings, load_settings
from gatekit.store import Store, open_store
from gatekit.store.sqlite import DB_FILE

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="gatekit data directory [default: GATEKIT_DATA_DIR or .gatekit]"
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="postgresql://… [default: GATEKIT_DATABASE_URL]"),
]

console = Console()
errors = Console(stderr=True)


def settings(data_dir: Path | None, database_url: str | None) -> Settings:
    return load_settings(data_dir=data_dir, database_url=database_url)


def existing_store(config: Settings) -> Store:
    """Open the configured store; refuse to create an empty SQLite file by accident."""
    if not config.database_url and not (config.data_dir / DB_FILE).exists():
        fail(f"no gatekit database at {config.data_dir / DB_FILE}")
    try:
        return open_store(config)
    except GatekitError as exc:
        fail(str(exc))


def fail(message: str, code: int = 2) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)
