from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

import gatekit
from gatekit.cli import app


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output and "version" in result.output


def test_version() -> None:
    result = CliRunner().invoke(app, ["version"])
    assert result.exit_code == 0
    assert result.output.strip() == gatekit.__version__


def test_demo_prints_one_allowed_one_blocked_one_approved() -> None:
    # A real process, as a user would run it.
    out = subprocess.run(
        [sys.executable, "-m", "gatekit.cli", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if line.count("│") >= 4}
    assert "allowed" in rows["read_balance"]
    assert "blocked" in rows["drop_table"] and "(did not run)" in rows["drop_table"]
    assert "approved" in rows["pay_invoice"] and "paid" in rows["pay_invoice"]
