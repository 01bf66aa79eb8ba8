"""What the listing commands print at 80 columns, and their --json forms.

(``gatekit-mcp pins list``: adapters/gatekit-mcp/tests/test_cli.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatekit import Action, DecisionRequest, LocalBackend
from gatekit._models import Decision
from gatekit._settings import load_settings
from gatekit.cli import app, short_id

runner = CliRunner()
NARROW = {"COLUMNS": "80"}
SHORT_ID = re.compile(r"\b[a-z]+_[0-9a-f]{4}…[0-9a-f]{4}\b")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def pending(data_dir: Path) -> list[Decision]:
    """Three actions waiting for review, with a long tool name."""
    backend = LocalBackend.from_settings(load_settings(data_dir=data_dir))
    try:
        return [
            backend.decide(
                DecisionRequest.for_action(
                    Action(
                        tool="transfer_funds_between_accounts",
                        risk_level="high",
                        agent_id="billing-agent",
                        arguments={"amount": amount},
                    )
                )
            )
            for amount in (5, 6, 7)
        ]
    finally:
        backend.close()


def _gatekit(data_dir: Path, *args: str) -> str:
    result = runner.invoke(app, [*args, "--data-dir", str(data_dir)], env=NARROW)
    assert result.exit_code == 0, result.output
    return result.stdout


def assert_fits(output: str, width: int = 80) -> None:
    too_wide = [line for line in output.splitlines() if len(line.rstrip()) > width]
    assert not too_wide, too_wide


def column(output: str, name: str) -> list[str]:
    """The cells of one column of a rich table, each put back together from its lines."""
    lines = output.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("approval "))
    starts = {m.group(): m.start() for m in re.finditer(r"\S+", lines[header_at])}
    names = list(starts)
    following = names.index(name) + 1
    start = starts[name]
    end = starts[names[following]] if following < len(names) else None
    cells: list[str] = []
    for line in lines[header_at + 2 :]:  # past the rule under the header
        piece = line[start:end].strip()
        if line[:1] != " ":  # a new row starts with its (never empty) first cell
            cells.append(piece)
        else:
            cells[-1] += piece
    return cells


def assert_only_ids_shortened(output: str) -> None:
    """Every "…" belongs to an id shortened by short_id; no other value is cut."""
    assert "…" not in SHORT_ID.sub("", output), output


def test_short_id_keeps_the_kind_and_both_ends() -> None:
    full = "dec_3f2a0000111122223333444455559c1d"
    assert short_id(full) == "dec_3f2a…9c1d"
    assert short_id(full) == short_id(full)  # the same id always reads the same
    assert short_id("apr_short") == "apr_short"
    assert short_id("0123456789abcdef" * 4) == "0123…cdef"


def test_approvals_list_fits_80_columns(data_dir: Path, pending: list[Decision]) -> None:
    for status in ("pending_review", "all"):
        output = _gatekit(data_dir, "approvals", "list", "--status", status)
        assert_fits(output)
        assert_only_ids_shortened(output)
        for decision in pending:
            assert short_id(decision.approval_id or "") in output
        # Long values fold onto the next lines; put together, nothing is missing.
        assert column(output, "tool") == ["transfer_funds_between_accounts"] * 3
        assert column(output, "agent") == ["billing-agent"] * 3
        reasons = column(output, "reason")
        assert [r.replace(" ", "") for r in reasons] == ["high-riskactionneedshumanreview"] * 3
    everything = _gatekit(data_dir, "approvals", "list", "--status", "all")
    assert column(everything, "status") == ["pending_review"] * 3


def test_approvals_list_json_has_the_full_ids(data_dir: Path, pending: list[Decision]) -> None:
    listed = json.loads(_gatekit(data_dir, "approvals", "list", "--json"))
    assert {item["approval_id"] for item in listed} == {d.approval_id for d in pending}
    assert {item["decision_id"] for item in listed} == {d.decision_id for d in pending}
    assert all(item["tool"] == "transfer_funds_between_accounts" for item in listed)
    assert all(item["agent_id"] == "billing-agent" for item in listed)


def test_an_empty_list_says_so(data_dir: Path, pending: list[Decision]) -> None:
    assert _gatekit(data_dir, "approvals", "list", "--status", "rejected").strip() == (
        "no approvals (rejected)"
    )
    assert (
        json.loads(_gatekit(data_dir, "approvals", "list", "--status", "rejected", "--json")) == []
    )


@pytest.mark.parametrize("ellipsis", ["…", "..."])
def test_approvals_accept_the_id_as_listed(
    data_dir: Path, pending: list[Decision], ellipsis: str
) -> None:
    full = pending[0].approval_id or ""
    shown = short_id(full).replace("…", ellipsis)
    out = _gatekit(data_dir, "approvals", "approve", shown, "--reviewer", "alice")
    assert f"{full}: approved by alice" in out
    assert full in _gatekit(data_dir, "approvals", "show", short_id(pending[0].decision_id))


def test_audit_tail_names_the_tool_and_fits_80_columns(
    data_dir: Path, pending: list[Decision]
) -> None:
    _gatekit(data_dir, "approvals", "reject", pending[0].approval_id or "", "--reviewer", "bob")
    output = _gatekit(data_dir, "audit", "tail", "-n", "10")
    assert_fits(output)
    assert_only_ids_shortened(output)
    records = [line for line in output.splitlines() if not line.startswith(" ")]
    assert len(records) == 4  # three decisions, one review
    assert all("transfer_funds_between_accounts" in line for line in records)
    assert "review  transfer_funds_between_accounts  rejected" in records[-1]
    assert f"{short_id(pending[0].decision_id)}" in output
    assert "by bob" in output


def test_audit_tail_json_lines(data_dir: Path, pending: list[Decision]) -> None:
    lines = _gatekit(data_dir, "audit", "tail", "--json").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["decision_id"] for r in records] == [d.decision_id for d in pending]
    assert all(r["tool"] == "transfer_funds_between_accounts" for r in records)
    assert all(r["kind"] == "decision" and r["record_id"].startswith("rec_") for r in records)
