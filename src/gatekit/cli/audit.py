"""``gatekit audit``: verify, export, follow, prune the audit log; rotate the signing key."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.text import Text

from gatekit.audit import AuditRecord, KeyRing, load_public_keys, prune, verify
from gatekit.audit.export import JsonlSource, export_jsonl
from gatekit.audit.verify import AuditSource
from gatekit.cli._common import (
    App,
    DatabaseUrl,
    DataDir,
    console,
    error_console,
    existing_store,
    fail,
    settings,
    short_id,
)
from gatekit.store import Store

app = App(help="Verify, export and follow the audit log.", no_args_is_help=True)


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
            help="Trusted .pub file or directory, repeatable (default: <data-dir>/keys)",
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
        error_console().print(f"[red]FAILED[/red] {escape(str(report.problem))}")
        raise typer.Exit(1)
    out = console()
    out.print(
        f"[green]OK[/green] {report.records} records in {report.chains} chain(s), "
        f"{report.checkpoints} signed checkpoint(s), {elapsed:.3f} s"
    )
    for writer_id, count in sorted(report.unsigned.items()):
        out.print(
            f"[yellow]note[/yellow] writer {escape(repr(writer_id))}: {count} record(s) after "
            "the last checkpoint are chained but not yet signed"
        )
    if strict and report.unsigned:
        raise typer.Exit(1)


@app.command("export")
def export_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout)")
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
            error_console().print(f"{count} records written to {output}", markup=False)
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
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print JSON lines: one object per record, with full ids and the record's data.",
        ),
    ] = False,
) -> None:
    """Print the most recent records (times in UTC), optionally following new ones."""
    store = existing_store(settings(data_dir, database_url))
    tools = _Tools(store)
    out = console()
    show: Callable[[AuditRecord], None] = (
        (lambda record: typer.echo(json.dumps(_as_json(record, tools))))
        if as_json
        else (lambda record: _print_record(out, record, tools))
    )
    try:
        positions: dict[str, int] = {}
        for head in store.audit_heads():
            after = max(0, head.seq - lines)
            for record in store.audit_records(head.writer_id, after):
                show(record)
            positions[head.writer_id] = head.seq
        while follow:
            time.sleep(0.5)
            for head in store.audit_heads():
                for record in store.audit_records(head.writer_id, positions.get(head.writer_id, 0)):
                    show(record)
                    positions[head.writer_id] = record.seq
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


class _Tools:
    """The tool each record is about: decision records name it; the others (review,
    consume, outcome, …) are looked up once per decision."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, str | None] = {}

    def of(self, record: AuditRecord, data: dict[str, Any]) -> str | None:
        action = data.get("action")
        if isinstance(action, dict) and action.get("tool"):
            return str(action["tool"])
        if record.decision_id is None:
            return None
        if record.decision_id not in self._known:
            decision = self._store.get(record.decision_id)
            self._known[record.decision_id] = decision.tool if decision else None
        return self._known[record.decision_id]


def _as_json(record: AuditRecord, tools: _Tools) -> dict[str, Any]:
    data: dict[str, Any] = record.content().get("data", {})
    return {
        "at": record.at,
        "writer_id": record.writer_id,
        "seq": record.seq,
        "kind": record.kind,
        "tool": tools.of(record, data),
        "decision_id": record.decision_id,
        "record_id": record.record_id,
        "data": data,
    }


_STATUS_STYLE = {
    "allowed": "green",
    "approved": "green",
    "success": "green",
    "blocked": "red",
    "rejected": "red",
    "error": "red",
    "pending_review": "yellow",
}


def _print_record(out: Console, record: AuditRecord, tools: _Tools) -> None:
    """Two lines, to fit 80 columns: what happened to which tool, then which decision and why."""
    data: dict[str, Any] = record.content().get("data", {})
    status = str(data.get("status") or "")
    what = Text.assemble(
        _when(record.at),
        "  ",
        (f"{record.kind}", "bold"),
        "  ",
        tools.of(record, data) or "-",
        "  ",
        (status, _STATUS_STYLE.get(status, "")),
    )
    why = Text(
        f"{short_id(record.decision_id or '-')}  {record.writer_id}#{record.seq}  {_why(data)}"
    )
    out.print(what)
    out.print(Padding(why, (0, 0, 0, 4), expand=False))


def _when(at: str) -> str:
    try:
        return datetime.fromisoformat(at).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return at


def _why(data: dict[str, Any]) -> str:
    if data.get("reviewer"):
        comment = data.get("comment")
        return f"by {data['reviewer']}" + (f": {comment}" if comment else "")
    return str(data.get("reason") or data.get("detail") or "")


@app.command("prune")
def prune_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    older_than_days: Annotated[
        float | None,
        typer.Option(help="Drop records older than this (default: GATEKIT_AUDIT_RETENTION_DAYS)"),
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
    console().print(f"pruned {deleted} record(s) older than {days:g} day(s)")


@app.command("rotate-key")
def rotate_key_command(data_dir: DataDir = None) -> None:
    """Start signing checkpoints with a new key; old public keys stay for verification."""
    config = settings(data_dir, None)
    signer = KeyRing(config.data_dir / "keys").rotate()
    keys = config.data_dir / "keys"
    console().print(f"new signing key {signer.key_id} in {keys}", markup=False)
