"""The gatekit-mcp command: option errors, policy hand-off, pins commands."""

from __future__ import annotations

from pathlib import Path

from gatekit_mcp.cli import app
from gatekit_mcp.pins import PinStore
from typer.testing import CliRunner

runner = CliRunner()


def test_the_proxy_needs_exactly_one_upstream() -> None:
    neither = runner.invoke(app, ["proxy"])
    both = runner.invoke(app, ["proxy", "--upstream-url", "http://127.0.0.1:1/mcp", "--", "x"])
    assert neither.exit_code == both.exit_code == 2
    assert "exactly one upstream" in neither.output


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["proxy", "--policy", str(tmp_path / "nope.yaml"), "--", "x"])
    assert result.exit_code == 2
    assert "policy file not found" in result.output


def test_an_invalid_tool_config_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "tools.yaml"
    config.write_text("tools:\n  rm: {risk_level: extreme}\n")
    result = runner.invoke(app, ["proxy", "--config", str(config), "--", "x"])
    assert result.exit_code == 2
    assert "rm" in result.output


def test_pins_list_approve_and_reset(tmp_path: Path) -> None:
    pins = tmp_path / "pins.json"
    store = PinStore(pins)
    tool = {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}
    store.check("srv", tool)
    store.check("srv", {**tool, "description": "Echo, and more."})

    listed = runner.invoke(app, ["pins", "list", "--pins", str(pins)])
    assert listed.exit_code == 0
    assert "srv\techo" in listed.output
    assert "CHANGED" in listed.output

    assert runner.invoke(app, ["pins", "approve", "echo", "--pins", str(pins)]).exit_code == 0
    assert "CHANGED" not in runner.invoke(app, ["pins", "list", "--pins", str(pins)]).output
    again = runner.invoke(app, ["pins", "approve", "echo", "--pins", str(pins)])
    assert again.exit_code == 2
    assert "no changed definition" in again.output

    assert runner.invoke(app, ["pins", "reset", "echo", "--pins", str(pins)]).exit_code == 0
    assert PinStore(pins).entries() == []
    assert runner.invoke(app, ["pins", "reset", "echo", "--pins", str(pins)]).exit_code == 2


def test_an_upstream_that_cannot_start_is_one_clear_line(tmp_path: Path) -> None:
    pins = str(tmp_path / "pins.json")
    result = runner.invoke(app, ["proxy", "--pins", pins, "--", str(tmp_path / "no-such-server")])
    assert result.exit_code == 1
    assert "the proxy stopped: FileNotFoundError" in result.output


def test_pins_live_in_the_gatekit_data_dir_by_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {"GATEKIT_DATA_DIR": str(data_dir)}
    store = PinStore(data_dir / "mcp-pins.json")
    store.check("srv", {"name": "echo", "description": "Echo.", "inputSchema": {}})
    listed = runner.invoke(app, ["pins", "list"], env=env)
    assert listed.exit_code == 0
    assert "srv\techo" in listed.output
    (data_dir / "mcp-pins.json").write_text("[]")
    broken = runner.invoke(app, ["pins", "list"], env=env)
    assert broken.exit_code == 2
    assert "not a gatekit pins file" in broken.output
