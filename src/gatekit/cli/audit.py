"""``gatekit audit``: verify, export, follow, prune the audit log; show or export its
latest checkpoints; rotate the signing key."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.text import Text

from gatekit._settings import Settings
from gatekit.audit import AuditRecord, KeyRing, Problem, load_public_keys, prune, verify
from gatekit.audit.export import JsonlSource, export_jsonl
from gatekit.audit.witness import (
    WITNESS_FILE,
    WitnessState,
    checkpoints_as_witness,
    read_witness,
    write_witness,
)
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
    key: Annotated[
        list[Path] | None,
        typer.Option(
            "--key",
            "--public-key",
            "-k",
            help="Trust this .pub, trust file or key directory, repeatable "
            "(default: the trust file <data-dir>/keys/trusted.json)",
        ),
    ] = None,
    witness: Annotated[
        list[Path] | None,
        typer.Option(
            "--witness",
            help="Compare with this audit witness or exported checkpoints, repeatable "
            "(default: <data-dir>/audit-witness.json and GATEKIT_AUDIT_WITNESS)",
        ),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            help="Fail unless the log is proven complete: every record signed, every "
            "writer closed cleanly and known to a witness."
        ),
    ] = False,
) -> None:
    """Check every chain offline, against the audit witness; exit 1 naming the first problem."""
    config = settings(data_dir, database_url)
    keys = _trusted_keys(config, key)
    witnesses = _witnesses(config, witness, exported=input_file is not None)
    started = time.perf_counter()
    if input_file is not None:
        report = verify(JsonlSource(input_file), keys, witnesses=witnesses, strict=strict)
    else:
        store = existing_store(config)
        try:
            report = verify(store, keys, witnesses=witnesses, strict=strict)
        finally:
            store.close()
    elapsed = time.perf_counter() - started
    warnings = [w for w in report.warnings if w is not report.problem]
    if report.problem is not None:
        # soft_wrap: paths and ids stay whole, for copying; the terminal wraps the line
        error_console().print(f"[red]FAILED[/red] {escape(str(report.problem))}", soft_wrap=True)
        _print_warnings(warnings)
        raise typer.Exit(1)
    console().print(
        f"[green]OK[/green] {report.records} records in {report.chains} chain(s), "
        f"{report.checkpoints} signed checkpoint(s), {len(witnesses)} witness(es), "
        f"{elapsed:.3f} s"
    )
    _print_warnings(warnings)


def _print_warnings(warnings: list[Problem]) -> None:
    for warning in warnings:
        _print_warning(str(warning))


def _print_warning(message: str) -> None:
    error_console().print(f"[yellow]WARNING[/yellow] {escape(message)}", soft_wrap=True)


def _trusted_keys(config: Settings, paths: list[Path] | None) -> dict[str, Ed25519PublicKey]:
    """Only keys the user names, or the ones gatekit listed in its trust file: never
    whatever ``.pub`` files lie around in the data dir."""
    if paths:
        for path in paths:
            if not path.exists():
                fail(f"no key file or directory at {path}")
        keys, where = load_public_keys(paths), ", ".join(map(str, paths))
    else:
        ring = KeyRing(config.data_dir / "keys")
        keys = ring.public_keys() if ring.directory.is_dir() else {}
        where = str(ring.trust_file)
    if not keys:
        fail(f"no trusted public keys in {where}; name them with --key")
    return keys


def _witnesses(config: Settings, paths: list[Path] | None, *, exported: bool) -> list[WitnessState]:
    if paths:
        for path in paths:
            if not path.exists():
                fail(f"no audit witness at {path}")
        return [read_witness(path) for path in paths]
    if exported:  # the data dir's witness has moved on since the export: compare only if asked
        return []
    defaults = [config.data_dir / WITNESS_FILE]
    defaults += [config.audit_witness] if config.audit_witness is not None else []
    for path in defaults:
        if not path.exists():
            _print_warning(f"no audit witness at {path}")
    return [read_witness(path) for path in defaults if path.exists()]


@app.command("checkpoints")
def checkpoints_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    export: Annotated[
        Path | None,
        typer.Option(
            "--export",
            help="Write them to this file instead, to keep on another system and "
            "verify against later (verify --witness FILE).",
        ),
    ] = None,
) -> None:
    """Show the latest signed checkpoint of every writer, or export them."""
    store = existing_store(settings(data_dir, database_url))
    try:
        latest = checkpoints_as_witness(export or Path("-"), store.audit_checkpoints())
    finally:
        store.close()
    if export is not None:
        write_witness(latest)
        error_console().print(
            f"latest checkpoints of {len(latest.writers)} writer(s) written to {export}",
            markup=False,
        )
        return
    out = console()
    for writer_id, entry in sorted(latest.writers.items()):
        cp = entry.checkpoint
        assert cp is not None  # built from checkpoints
        out.print(f"{writer_id}  seq {cp.seq}  {_when(cp.at)}  key {cp.key_id}", markup=False)


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
