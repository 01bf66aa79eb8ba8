"""``gatekit audit``: verify, export, follow, prune the audit log; rotate the signing key."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from gatekit.audit import AuditRecord, KeyRing, load_public_keys, prune, verify
from gatekit.audit.export import JsonlSource, export_jsonl
from gatekit.audit.verify import AuditSource
from gatekit.cli._common import (
    DatabaseUrl,
    DataDir,
    console,
    errors,
    existing_store,
    fail,
    settings,
)

app = typer.Typer(help="Verify, export and follow the audit log.", no_args_is_help=True)


@app.command("verify")
def verify_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    input_file: Annotated[
        Path | None, typer.Option("--input", help="Verify an exported JSONL file instead.")
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            "-k",
            help="Trusted .pub file or directory (repeatable) [default: <data-dir>/keys]",
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Also fail when records after the last checkpoint are unsigned.")
    ] = False,
) -> None:
    """Check every chain offline; exit 1 naming the first bad record."""
    config = settings(data_dir, database_url)
    key_paths = public_key or [config.data_dir / "keys"]
    keys = load_public_keys([p for p in key_paths if p.exists()])
    if not keys:
        fail(f"no public keys found in {', '.join(map(str, key_paths))}")
    source: AuditSource = JsonlSource(input_file) if input_file else existing_store(config)
    started = time.perf_counter()
    report = verify(source, keys)
    elapsed = time.perf_counter() - started
    if report.problem is not None:
        errors.print(f"[red]FAILED[/red] {escape(str(report.problem))}", highlight=False)
        raise typer.Exit(1)
    console.print(
        f"[green]OK[/green] {report.records} records in {report.chains} chain(s), "
        f"{report.checkpoints} signed checkpoint(s), {elapsed:.3f} s",
        highlight=False,
    )
    for writer_id, count in sorted(report.unsigned.items()):
        console.print(
            f"[yellow]note[/yellow] writer {writer_id!r}: {count} record(s) after the "
            "last checkpoint are chained but not yet signed",
            highlight=False,
        )
    if strict and report.unsigned:
        raise typer.Exit(1)


@app.command("export")
def export_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write [default: stdout]")
    ] = None,
) -> None:
    """Export heads, checkpoints and records as JSONL."""
    store = existing_store(settings(data_dir, database_url))
    try:
        if output is None:
            export_jsonl(store, sys.stdout)
        else:
            with output.open("w", encoding="utf-8") as out:
                count = export_jsonl(store, out)
            errors.print(f"{count} records written to {output}", highlight=False)
    finally:
        store.close()


@app.command("tail")
def tail_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    lines: Annotated[int, typer.Option("-n", help="How many recent records per writer")] = 10,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new records")
    ] = False,
) -> None:
    """Print the most recent records, optionally following new ones."""
    store = existing_store(settings(data_dir, database_url))
    try:
        positions: dict[str, int] = {}
        for head in store.audit_heads():
            after = max(0, head.seq - lines)
            for record in store.audit_records(head.writer_id, after):
                _print_record(record)
            positions[head.writer_id] = head.seq
        while follow:
            time.sleep(0.5)
            for head in store.audit_heads():
                for record in store.audit_records(head.writer_id, positions.get(head.writer_id, 0)):
                    _print_record(record)
                    positions[head.writer_id] = record.seq
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


def _print_record(record: AuditRecord) -> None:
    data = record.content().get("data", {})
    summary = {k: data[k] for k in ("status", "reviewer", "reason", "detail") if data.get(k)}
    console.print(
        f"{record.at}  {record.writer_id}#{record.seq}  [bold]{record.kind:<15}[/bold] "
        f"{record.decision_id or '-'}  {escape(json.dumps(summary))}",
        highlight=False,
    )


@app.command("prune")
def prune_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    older_than_days: Annotated[
        float | None,
        typer.Option(help="Drop records older than this [default: GATEKIT_AUDIT_RETENTION_DAYS]"),
    ] = None,
) -> None:
    """Drop old records up to a signed checkpoint, which stays as the chain's anchor."""
    config = settings(data_dir, database_url)
    days = older_than_days if older_than_days is not None else config.audit_retention_days
    if days is None:
        fail("say how old: --older-than-days or GATEKIT_AUDIT_RETENTION_DAYS")
    store = existing_store(config)
    try:
        deleted = prune(store, datetime.now(UTC) - timedelta(days=days))
    finally:
        store.close()
    console.print(f"pruned {deleted} record(s) older than {days:g} day(s)", highlight=False)


@app.command("rotate-key")
def rotate_key_command(data_dir: DataDir = None) -> None:
    """Start signing checkpoints with a new key; old public keys stay for verification."""
    config = settings(data_dir, None)
    signer = KeyRing(config.data_dir / "keys").rotate()
    console.print(f"new signing key {signer.key_id} in {config.data_dir / 'keys'}", highlight=False)
