"""Every command ends a configuration, gatekit or file error with one ``error:`` line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gatekit import Action, DecisionRequest, LocalBackend
from gatekit._settings import load_settings
from gatekit.cli import App, app

runner = CliRunner()

# Every gatekit command that reads the GATEKIT_* settings.
SETTINGS_COMMANDS = [
    ["approvals", "list"],
    ["approvals", "show", "apr_x"],
    ["approvals", "approve", "apr_x", "--reviewer", "alice"],
    ["approvals", "reject", "apr_x", "--reviewer", "alice"],
    ["audit", "verify"],
    ["audit", "export"],
    ["audit", "tail"],
    ["audit", "prune", "--older-than-days", "1"],
    ["audit", "rotate-key"],
    ["demo"],
]
BAD_SETTINGS = [
    ({"GATEKIT_FAIL_MODE": "maybe"}, "GATEKIT_FAIL_MODE"),
    ({"GATEKIT_APPROVAL_TIMEOUT": "-1"}, "GATEKIT_APPROVAL_TIMEOUT"),
    ({"GATEKIT_AUDIT_CHECKPOINT_RECORDS": "0"}, "GATEKIT_AUDIT_CHECKPOINT_RECORDS"),
]


# gatekit-mcp has the same tests in adapters/gatekit-mcp/tests/test_cli.py.


def assert_one_error_line(result: Result, code: int) -> str:
    """The command exited ``code`` after exactly one ``error:`` line on stderr."""
    assert not isinstance(result.exception, Exception), result.exception  # no escaped error
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(("env", "variable"), BAD_SETTINGS)
@pytest.mark.parametrize("args", SETTINGS_COMMANDS, ids=" ".join)
def test_bad_settings_are_one_line(args: list[str], env: dict[str, str], variable: str) -> None:
    if args == ["demo"] and variable == "GATEKIT_APPROVAL_TIMEOUT":
        pytest.skip("the demo sets its own approval timeout, which wins over the environment")
    line = assert_one_error_line(runner.invoke(app, args, env=env), code=2)
    assert variable in line


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with a database in it."""
    data_dir = tmp_path / "data"
    LocalBackend.from_settings(load_settings(data_dir=data_dir)).close()
    return data_dir


@pytest.fixture
def not_a_dir(tmp_path: Path) -> Path:
    # Where a directory is expected; permissions would not stop a test run as root.
    path = tmp_path / "file"
    path.write_text("")
    return path


def test_an_unusable_data_dir_is_one_line(not_a_dir: Path) -> None:
    result = runner.invoke(app, ["audit", "rotate-key"], env={"GATEKIT_DATA_DIR": str(not_a_dir)})
    assert str(not_a_dir) in assert_one_error_line(result, code=2)  # a configuration error


def test_an_unwritable_output_file_is_one_line(data_dir: Path, not_a_dir: Path) -> None:
    out = not_a_dir / "out.jsonl"
    result = runner.invoke(app, ["audit", "export", "--data-dir", str(data_dir), "-o", str(out)])
    assert str(out) in assert_one_error_line(result, code=1)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["policy", "check", "{bad}"], "invalid YAML"),
        (["policy", "check", "{missing}"], "cannot read policy file"),
        (["policy", "explain", "{bad}", "--action", "{missing}"], "invalid YAML"),
        (["policy", "explain", "{good}", "--action", "{missing}"], "cannot read the action"),
        (["policy", "test", "{missing}"], "cannot read the cases"),
        (["policy", "test", "{bad}"], "invalid YAML"),
        (["approvals", "list", "--status", "maybe"], "unknown status 'maybe'"),
        (["approvals", "list", "--data-dir", "{missing}"], "no gatekit database"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    files = {"bad": tmp_path / "bad.yaml", "good": tmp_path / "good.yaml"}
    files["bad"].write_text("rules: [\n")
    files["good"].write_text("default: allow\n")
    names = {name: str(path) for name, path in files.items()}
    args = [arg.format(missing=tmp_path / "missing", **names) for arg in args]
    assert expected in assert_one_error_line(runner.invoke(app, args), code=2)


def test_a_multi_line_message_becomes_one_line(tmp_path: Path) -> None:
    policy = tmp_path / "two-problems.yaml"
    policy.write_text("rules:\n  - {id: a, verdict: maybe}\n  - {id: b, verdict: never}\n")
    line = assert_one_error_line(runner.invoke(app, ["policy", "check", str(policy)]), code=2)
    assert f"{policy}:2:" in line and f"{policy}:3:" in line


def test_a_review_conflict_is_a_failure_not_a_usage_error(data_dir: Path) -> None:
    backend = LocalBackend.from_settings(load_settings(data_dir=data_dir))
    pending = backend.decide(DecisionRequest.for_action(Action(tool="pay", risk_level="high")))
    approval = pending.approval_id or ""
    backend.reject(approval, reviewer="carol")
    backend.close()
    result = runner.invoke(
        app, ["approvals", "approve", approval, "--reviewer", "alice", "--data-dir", str(data_dir)]
    )
    assert "already rejected" in assert_one_error_line(result, code=1)


def test_unexpected_errors_keep_their_traceback() -> None:
    # A bug is not an error message: it must reach the user (and the test) as it is.
    broken = App()

    @broken.command()
    def crash() -> None:
        raise RuntimeError("a bug")

    @broken.command()
    def other() -> None: ...

    result = runner.invoke(broken, ["crash"])
    assert isinstance(result.exception, RuntimeError)


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A real process, as a user runs it (tracebacks are printed by Python itself)."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )


def test_a_real_process_prints_one_line_and_debug_prints_the_traceback() -> None:
    env = {"GATEKIT_FAIL_MODE": "maybe"}
    plain = _run("-m", "gatekit.cli", "approvals", "list", env=env)
    assert plain.returncode == 2
    (line,) = plain.stderr.splitlines()
    assert line.startswith("error: invalid gatekit configuration: fail_mode (GATEKIT_FAIL_MODE)")
    debug = _run("-m", "gatekit.cli", "--debug", "approvals", "list", env=env)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "ConfigurationError" in debug.stderr
