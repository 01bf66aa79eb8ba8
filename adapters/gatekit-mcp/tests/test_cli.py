"""The gatekit-mcp command: option errors, policy hand-off, pins commands, and the
conventions it shares with ``gatekit`` (one-line errors, --debug, --version, help)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from gatekit_mcp.cli import app
from gatekit_mcp.pins import PinStore
from mcp_harness import UPSTREAM, harness_env, proxy_args, session_for
from typer.testing import CliRunner, Result

import gatekit
from gatekit.cli import short_id

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
    assert listed.output.split()[-6:-3] == [
        "srv",
        "echo",
        short_id(store.entries()[0][2]["digest"]),
    ]
    assert "CHANGED" in listed.output

    assert runner.invoke(app, ["pins", "approve", "echo", "--pins", str(pins)]).exit_code == 0
    assert "CHANGED" not in runner.invoke(app, ["pins", "list", "--pins", str(pins)]).output
    again = runner.invoke(app, ["pins", "approve", "echo", "--pins", str(pins)])
    assert again.exit_code == 1
    assert again.stderr == "error: tool 'echo' has no changed definition to approve\n"

    assert runner.invoke(app, ["pins", "reset", "echo", "--pins", str(pins)]).exit_code == 0
    assert PinStore(pins).entries() == []
    gone = runner.invoke(app, ["pins", "reset", "echo", "--pins", str(pins)])
    assert gone.exit_code == 1
    assert gone.stderr == "error: no pin for tool 'echo'\n"


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
    assert str(data_dir / "mcp-pins.json") in listed.output
    assert listed.output.split()[-4:-2] == ["srv", "echo"]
    (data_dir / "mcp-pins.json").write_text("[]")
    broken = runner.invoke(app, ["pins", "list"], env=env)
    assert broken.exit_code == 2
    assert "not a gatekit pins file" in broken.output


# -- one-line errors, --version, help, and what pins list prints ---------------------------


def assert_one_error_line(result: Result, code: int) -> str:
    """The command exited ``code`` after exactly one ``error:`` line on stderr."""
    assert not isinstance(result.exception, Exception), result.exception  # no escaped error
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


EVERY_COMMAND = [
    ["pins", "list"],
    ["pins", "approve", "echo"],
    ["pins", "reset", "echo"],
    ["proxy", "--", "never-started"],
]


@pytest.mark.parametrize(
    "env", [{"GATEKIT_FAIL_MODE": "maybe"}, {"GATEKIT_APPROVAL_TIMEOUT": "-1"}], ids=str
)
@pytest.mark.parametrize("args", EVERY_COMMAND, ids=" ".join)
def test_bad_settings_are_one_line(args: list[str], env: dict[str, str]) -> None:
    line = assert_one_error_line(runner.invoke(app, args, env=env), code=2)
    assert next(iter(env)) in line


@pytest.mark.parametrize("args", EVERY_COMMAND[:3], ids=" ".join)
def test_an_unusable_data_dir_is_one_line(tmp_path: Path, args: list[str]) -> None:
    not_a_dir = tmp_path / "file"  # permissions would not stop a test run as root
    not_a_dir.write_text("")
    result = runner.invoke(app, args, env={"GATEKIT_DATA_DIR": str(not_a_dir)})
    assert str(not_a_dir) in assert_one_error_line(result, code=1)


def test_a_malformed_policy_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    monkeypatch.setenv("GATEKIT_POLICY", str(bad))  # the proxy sets it; undone after the test
    result = runner.invoke(app, ["proxy", "--policy", str(bad), "--", "never-started"])
    assert f"{bad}:2: invalid YAML" in assert_one_error_line(result, code=2)


def test_a_backend_factory_that_is_not_there_is_one_line() -> None:
    result = runner.invoke(app, ["proxy", "--backend-factory", "no_such_module:make", "--", "x"])
    assert "no_such_module" in assert_one_error_line(result, code=2)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    """A real process, as an MCP host starts it."""
    command = [sys.executable, "-m", "gatekit_mcp", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def test_a_real_process_prints_one_line_and_debug_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [\n")
    args = ("proxy", "--policy", str(bad), "--", "never-started")
    plain = _run(*args)
    assert plain.returncode == 2
    assert plain.stderr.splitlines() == [
        f"error: {bad}:2: invalid YAML: did not find expected node content"
    ]
    debug = _run("--debug", *args)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr


def test_version_option() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    expected = f"gatekit-mcp {version('gatekit-mcp')} (gatekit-core {gatekit.__version__})\n"
    assert result.stdout == expected


@pytest.mark.parametrize(
    "args", [[], ["proxy"], ["pins"], ["pins", "list"], ["pins", "approve"], ["pins", "reset"]]
)
def test_help_shows_flags_as_flags(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout
    if not args:
        assert "--debug" in result.stdout and "--version" in result.stdout


def _pins_list(pins: Path, *args: str) -> str:
    result = runner.invoke(app, ["pins", "list", "--pins", str(pins), *args], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_pins_list_says_when_nothing_is_pinned(tmp_path: Path) -> None:
    pins = tmp_path / "pins.json"
    assert _pins_list(pins) == f"no pinned tools in {pins}\n"
    assert json.loads(_pins_list(pins, "--json")) == []


def test_pins_list_has_a_header_and_json_has_full_digests(tmp_path: Path) -> None:
    pins = tmp_path / "pins.json"
    store = PinStore(pins)
    tool = {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}
    first = store.check("srv", tool)
    changed = store.check("srv", {**tool, "description": "Echo, and more."})

    path_line, header, _rule, row = _pins_list(pins).splitlines()
    assert path_line == f"pinned tools in {pins}"  # whole, to be copied; the terminal wraps it
    assert header.split() == ["server", "tool", "pinned", "state"]
    pinned, now = short_id(first.pinned), short_id(changed.current)
    assert row.split() == ["srv", "echo", pinned, "CHANGED", "to", now]
    assert max(len(line.rstrip()) for line in (header, row)) <= 80

    (entry,) = json.loads(_pins_list(pins, "--json"))
    assert (entry["server"], entry["tool"], entry["state"]) == ("srv", "echo", "changed")
    assert entry["digest"] == first.pinned
    assert entry["observed"]["digest"] == changed.current


# -- where the upstream comes from, and what a first run says ------------------------------


def test_upstream_given_twice_is_refused() -> None:
    both = runner.invoke(app, ["proxy", "--upstream", "python server.py", "--", "python", "x"])
    url = runner.invoke(app, ["proxy", "--upstream", "x", "--upstream-url", "http://h/mcp"])
    assert both.exit_code == url.exit_code == 2
    assert "exactly one upstream" in both.output


def test_max_sessions_must_be_positive() -> None:
    result = runner.invoke(app, ["proxy", "--max-sessions", "0", "--", "x"])
    assert result.exit_code == 2


@pytest.mark.anyio
@pytest.mark.parametrize("where", ["option", "config"])
async def test_the_upstream_command_line_can_be_one_string(tmp_path: Path, where: str) -> None:
    command_line = f"{shlex.quote(sys.executable)} {shlex.quote(str(UPSTREAM))}"
    config = {"upstream": command_line} if where == "config" else {}
    extra = ["--upstream", command_line] if where == "option" else []
    args = proxy_args(tmp_path, config, upstream=[], extra=extra)
    async with session_for(args, harness_env(tmp_path)) as session:
        tools = [tool.name for tool in (await session.list_tools()).tools]
    assert "echo" in tools


def test_without_a_policy_the_proxy_says_which_applies_and_how_to_approve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GATEKIT_POLICY", raising=False)
    result = runner.invoke(app, ["proxy", "--", str(tmp_path / "no-such-server")])
    notice = result.stderr.splitlines()[0]
    assert notice.startswith("gatekit-mcp: no --policy given: the built-in default policy")
    assert "every other call needs a human review" in notice
    assert "held up to 30 s" in notice
    assert "gatekit approvals approve ID" in notice
    with_policy = tmp_path / "policy.yaml"
    with_policy.write_text("rules: []\n")
    monkeypatch.setenv("GATEKIT_POLICY", str(with_policy))  # the proxy sets it too
    given = runner.invoke(app, ["proxy", "--policy", str(with_policy), "--", "no-such-server"])
    assert "no --policy given" not in given.stderr
