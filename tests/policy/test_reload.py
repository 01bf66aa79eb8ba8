"""Policy files in the embedded engine: loaded from settings, reloaded when edited."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from gatekit import Action, Blocked, Client, DecisionRequest, LocalBackend, Status, ValidationError
from gatekit.policy import FilePolicy

V1 = "default: review\nrules:\n  - {id: reads, match: {tools: [read]}, verdict: allow}\n"
V2 = "default: review\nrules:\n  - {id: no-reads, match: {tools: [read]}, verdict: block}\n"
BROKEN = "default: review\nrules:\n  - {id: reads, match: {tools: [read]}, verdict: perhaps}\n"


class Ticker:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _write(path: Path, text: str, bump: int) -> None:
    path.write_text(text)
    stamp = 1_700_000_000 + bump
    os.utime(path, (stamp, stamp))  # a distinct mtime even within one clock tick


def _read() -> DecisionRequest:
    return DecisionRequest.for_action(Action(tool="read", agent_id="a"))


def test_an_edit_is_picked_up_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, V1, 0)
    ticker = Ticker()
    policy = FilePolicy(path, check_interval=0.5, monotonic=ticker)
    assert policy.evaluate(_read()).rule_ids == ("reads",)
    _write(path, V2, 1)
    ticker.now = 0.2  # not yet time to look: the file is not even stat'ed
    assert policy.evaluate(_read()).rule_ids == ("reads",)
    ticker.now = 0.6
    assert policy.evaluate(_read()).rule_ids == ("no-reads",)


def test_an_invalid_edit_keeps_the_last_good_policy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, V1, 0)
    ticker = Ticker()
    policy = FilePolicy(path, monotonic=ticker)
    _write(path, BROKEN, 1)
    ticker.now = 1
    with caplog.at_level(logging.ERROR, logger="gatekit.policy"):
        evaluation = policy.evaluate(_read())
    assert evaluation.rule_ids == ("reads",)
    (check,) = evaluation.checks
    assert check.name == "policy.reload_error"
    assert f"{path}:3: rules[0].verdict" in check.detail
    assert "keeping the last good one" in caplog.text
    assert policy.error is not None
    _write(path, V2, 2)
    ticker.now = 2
    fixed = policy.evaluate(_read())
    assert fixed.rule_ids == ("no-reads",)
    assert fixed.checks == ()
    assert policy.error is None


def test_a_deleted_file_keeps_the_last_good_policy(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, V1, 0)
    ticker = Ticker()
    policy = FilePolicy(path, monotonic=ticker)
    path.unlink()
    ticker.now = 1
    evaluation = policy.evaluate(_read())
    assert evaluation.rule_ids == ("reads",)
    assert evaluation.checks[0].name == "policy.reload_error"


def test_counters_survive_a_reload(tmp_path: Path) -> None:
    limited = "default: allow\nlimits:\n  - {id: l, window: 1h, max_calls: 2}\n"
    path = tmp_path / "policy.yaml"
    _write(path, limited, 0)
    ticker = Ticker()
    backend = LocalBackend(policy=FilePolicy(path, monotonic=ticker))
    for _ in range(2):
        assert backend.decide(_read()).status is Status.ALLOWED
    _write(path, limited + "# edited\n", 1)
    ticker.now = 1
    assert backend.decide(_read()).status is Status.BLOCKED


def test_an_invalid_file_fails_at_start(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, BROKEN, 0)
    with pytest.raises(ValidationError, match=r"policy.yaml:3: rules\[0\].verdict"):
        LocalBackend(policy=path)


def test_local_backend_accepts_a_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, V2, 0)
    for given in (path, str(path)):
        backend = LocalBackend(policy=given)
        assert backend.decide(_read()).rule_ids == ["no-reads"]


def test_gatekit_policy_setting_configures_the_default_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, V2, 0)
    monkeypatch.setenv("GATEKIT_POLICY", str(path))
    client = Client(agent_id="a")
    ran = []
    decision = client.decide(tool="read")
    assert decision.status is Status.BLOCKED
    assert decision.rule_ids == ["no-reads"]
    with pytest.raises(Blocked, match="rule no-reads"), client.guard(tool="read"):
        ran.append(1)
    assert ran == []


def test_a_reload_error_reaches_the_decision(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    _write(path, V1, 0)
    ticker = Ticker()
    backend = LocalBackend(policy=FilePolicy(path, monotonic=ticker))
    _write(path, BROKEN, 1)
    ticker.now = 1
    decision = backend.decide(_read())
    assert decision.status is Status.ALLOWED  # the last good policy still decides
    assert [c.name for c in decision.checks] == ["policy.reload_error"]
