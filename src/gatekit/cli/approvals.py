"""``gatekit approvals``: list, inspect, approve and reject actions waiting for a human."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from gatekit._models import Action, Decision, Status
from gatekit.backends.local import LocalBackend
from gatekit.cli._common import (
    FAILURE,
    App,
    DatabaseUrl,
    DataDir,
    console,
    existing_store,
    fail,
    is_short_id,
    matches_short_id,
    settings,
    short_id,
)

app = App(help="Review actions waiting for a human decision.", no_args_is_help=True)

Reviewer = Annotated[
    str,
    typer.Option("--reviewer", envvar="GATEKIT_REVIEWER", help="Who decides (your identity)."),
]
Comment = Annotated[str, typer.Option("--comment", "-m", help="Why; kept in the audit log.")]
ApprovalId = Annotated[
    str,
    typer.Argument(help="The approval id, in full or shortened as listed (apr_1a2b…9f0e)."),
]

# How many recent decisions a shortened id is looked up among.
_SHORT_ID_SEARCH = 1000


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
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON document: a list of approvals, with full ids."),
    ] = False,
) -> None:
    """List approvals (pending ones by default); ids are shortened, as approve/reject accept."""
    wanted = None if status == "all" else _status(status)
    backend = _backend(data_dir, database_url)
    try:
        if wanted is Status.PENDING_REVIEW:
            decisions = backend.pending()[:limit]
        else:
            decisions = [d for d in backend.store.list(wanted, limit) if d.approval_id]
        listed = [(d, backend.store.get_action(d.decision_id)) for d in decisions]
    finally:
        backend.close()
    if as_json:
        typer.echo(json.dumps([_as_json(d, action) for d, action in listed], indent=2))
    elif not listed:
        console().print(f"no approvals ({status})", markup=False)
    else:
        console().print(_table(listed, status, show_status=wanted is None))


def _as_json(decision: Decision, action: Action | None) -> dict[str, object]:
    shown = decision.model_dump(mode="json", exclude_none=True)
    shown["agent_id"] = action.agent_id if action else None
    return shown


def _table(listed: list[tuple[Decision, Action | None]], title: str, *, show_status: bool) -> Table:
    # Ids are shortened, never cut; other cells wrap (fold) rather than end in "…",
    # and keep a readable minimum width at 80 columns.
    table = Table(
        title=f"approvals ({title})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    table.add_column("approval", no_wrap=True)
    table.add_column("tool", overflow="fold", min_width=10)
    if show_status:
        table.add_column("status", no_wrap=True)
    table.add_column("agent", overflow="fold", min_width=8)
    table.add_column("age", no_wrap=True)
    table.add_column("reason", overflow="fold", min_width=14)
    now = datetime.now(UTC)
    for decision, action in listed:
        cells = [
            short_id(decision.approval_id or decision.decision_id),
            decision.tool,
            *([decision.status.value] if show_status else []),
            (action.agent_id if action else None) or "-",
            _age(decision.created_at, now),
            decision.reason,
        ]
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _age(moment: datetime, now: datetime) -> str:
    """How long ago the action was asked for, in its largest unit: 45s, 12m, 3h, 2d."""
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@app.command("show")
def show_command(
    approval_id: ApprovalId,
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
        console().print_json(json.dumps(shown))
    finally:
        backend.close()


@app.command("approve")
def approve_command(
    approval_id: ApprovalId,
    reviewer: Reviewer,
    comment: Comment = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Approve one action (single use, until it expires)."""
    _review(approval_id, reviewer, comment, data_dir, database_url, approve=True)


@app.command("reject")
def reject_command(
    approval_id: ApprovalId,
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
    finally:
        backend.close()
    console().print(f"{done.approval_id}: {done.status.value} by {reviewer}", markup=False)


def _find(backend: LocalBackend, approval_id: str) -> Decision:
    """By approval id, by decision id for convenience, or by either shortened as listed."""
    store = backend.store
    decision = store.find_by_approval(approval_id) or store.get(approval_id)
    if decision is None and is_short_id(approval_id):
        decision = _find_shortened(backend, approval_id)
    if decision is None or decision.approval_id is None:
        fail(f"no approval {approval_id!r}", code=FAILURE)
    return decision


def _find_shortened(backend: LocalBackend, shortened: str) -> Decision | None:
    recent = [
        *backend.store.list(Status.PENDING_REVIEW, _SHORT_ID_SEARCH),
        *backend.store.list(None, _SHORT_ID_SEARCH),
    ]
    found = {
        d.decision_id: d
        for d in recent
        if d.approval_id
        and (
            matches_short_id(shortened, d.approval_id) or matches_short_id(shortened, d.decision_id)
        )
    }
    if len(found) > 1:
        fail(f"{shortened} stands for several approvals; give the full id (list --json)")
    return next(iter(found.values()), None)


def _status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        fail(f"unknown status {value!r}; one of: {', '.join(s.value for s in Status)}, all")
