"""--version, and help that reads like a well-kept tool's (gatekit-mcp: its own tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

import gatekit
from gatekit.cli import app

runner = CliRunner()


def test_gatekit_version_option() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"gatekit {gatekit.__version__}\n"
    assert runner.invoke(app, ["version"]).stdout == f"{gatekit.__version__}\n"


def _command_paths(command: object, path: list[str]) -> Iterator[list[str]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from _command_paths(sub, [*path, name])


EVERY_COMMAND = list(_command_paths(typer.main.get_command(app), []))


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda args: " ".join(["gatekit", *args]))
def test_help_shows_flags_as_flags(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout


def test_the_top_level_help_offers_debug_and_version() -> None:
    shown = runner.invoke(app, ["--help"], env={"COLUMNS": "100"}).stdout
    assert "--debug" in shown and "--version" in shown


def help_of(application: typer.Typer, *args: str) -> str:
    text = runner.invoke(application, [*args, "--help"], env={"COLUMNS": "200"}).stdout
    return " ".join(text.split())


def test_defaults_taken_from_the_environment_are_shown() -> None:
    # Written "[default: …]", rich took them for markup and dropped them.
    assert "(default: GATEKIT_DATA_DIR or .gatekit)" in help_of(app, "approvals", "list")


def test_json_options_say_what_they_print() -> None:
    assert "one JSON document" in help_of(app, "approvals", "list")
    assert "JSON lines" in help_of(app, "audit", "tail")
