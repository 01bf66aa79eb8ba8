"""``gatekit approvals``: list, inspect, approve and reject actions waiting for a human."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gatekit._exceptions import GatekitError
from gatekit._models import Decision, Status
from gatekit.backends.local import LocalBackend
from gatekit.cli._common import DatabaseUrl, DataDir, console, existing_store, fail, settings

app = typer.Typer(help="Review actions waiting for a human decision.", no_args_is_help=True)

Reviewer = Annotated[
    str,
    typer.Option("--reviewer", envvar="GATEKIT_REVIEWER", help="Who decides (your identity)."),
]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Why; kept in the audit log.")]


def _backend(data_dir: Path | None, database_url: str | None) -> LocalBackend:
    config = settings(data_dir, database_url)
    existing_store(config).close()  # refuse to start from an empty data directory
    return LocalBackend.from_settings(config)


@app.command("list")
def list_command(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    status: Annotated[
        str, typer.Option(help="pending_review, approved, rejected, expired, … or all")
    ] = "pending_review",
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
) -> None:
    """List approvals (pending ones by default)."""
    backend = _backend(data_dir, database_url)
    try:
        if status == "pending_review":
            decisions = backend.pending()[:limit]
        else:
            wanted = None if status == "all" else _status(status)
            decisions = [d for d in backend.store.list(wanted, limit) if d.approval_id]
        table = Table(title=f"approvals ({status})")
        table.add_column("approval", no_wrap=True, min_width=36)  # whole, to be copied
        for column in ("tool", "status", "agent", "requested", "reason"):
            table.add_column(column)
        for decision in decisions:
            action = backend.store.get_action(decision.decision_id)
            table.add_row(
                decision.approval_id,
                decision.tool,
                decision.status.value,
                (action.agent_id if action else None) or "-",
                decision.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                escape(decision.reason),
            )
        console.print(table)
    finally:
        backend.close()


@app.command("show")
def show_command(
    approval_id: str,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show one approval with the (masked) action it is bound to."""
    backend = _backend(data_dir, database_url)
    try:
        decision = _find(backend, approval_id)
        action = backend.store.get_action(decision.decision_id)
        shown = {
            "decision": decision.model_dump(mode="json", exclude_none=True),
            "action": action.model_dump(mode="json") if action else None,
        }
        console.print_json(json.dumps(shown))
    finally:
        backend.close()


@app.command("approve")
def approve_command(
    approval_id: str,
    reviewer: Reviewer,
    comment: Comment = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Approve one action (single use, until it expires)."""
    _review(approval_id, reviewer, comment, data_dir, database_url, approve=True)


@app.command("reject")
def reject_command(
    approval_id: str,
    reviewer: Reviewer,
    comment: Comment = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Reject one action."""
    _review(approval_id, reviewer, comment, data_dir, database_url, approve=False)


def _review(
    approval_id: str,
    reviewer: str,
    comment: str,
    data_dir: Path | None,
    database_url: str | None,
    *,
    approve: bool,
) -> None:
    backend = _backend(data_dir, database_url)
    try:
        decision = _find(backend, approval_id)
        review = backend.approve if approve else backend.reject
        done = review(decision.approval_id or approval_id, reviewer=reviewer, comment=comment)
    except GatekitError as exc:
        fail(str(exc), code=1)
    finally:
        backend.close()
    console.print(f"{done.approval_id}: {done.status.value} by {reviewer}", highlight=False)


def _find(backend: LocalBackend, approval_id: str) -> Decision:
    """By approval id, or by decision id for convenience."""
    decision = backend.store.find_by_approval(approval_id) or backend.store.get(approval_id)
    if decision is None or decision.approval_id is None:
        fail(f"no approval {approval_id!r}", code=1)
    return decision


def _status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        fail(f"unknown status {value!r}; one of: {', '.join(s.value for s in Status)}, all")
