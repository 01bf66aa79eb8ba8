"""kill -9 between decision and execution, then restart: nothing lost, nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from gatekit import Status
from gatekit.cli import app

WORKER = Path(__file__).with_name("crash_worker.py")
KEY = "transfer-ACME-250"


def _start(db, tmp_path, mode="run"):
    env = {**os.environ, **db.env}
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(tmp_path / "marker"), mode],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )


def _wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _runs(tmp_path):
    marker = tmp_path / "marker"
    return marker.read_text().count("ran") if marker.exists() else 0


def _kill(proc):
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _verify(db):
    result = CliRunner().invoke(app, ["audit", "verify", *db.cli_options])
    assert result.exit_code == 0, result.output


def test_killed_while_waiting_for_review_runs_once_after_restart(db, tmp_path):
    store = db.open()
    agent = _start(db, tmp_path)
    _wait_for(lambda: store.find_by_idempotency_key(KEY) is not None)
    _kill(agent)  # the decision is committed; the process dies before any execution
    pending = store.find_by_idempotency_key(KEY)
    assert pending.status is Status.PENDING_REVIEW
    assert _runs(tmp_path) == 0

    approve = CliRunner().invoke(
        app,
        ["approvals", "approve", pending.approval_id, "--reviewer", "alice", *db.cli_options],
    )
    assert approve.exit_code == 0, approve.output

    restarted = _start(db, tmp_path)
    out, err = restarted.communicate(timeout=120)
    assert out.strip() == "RAN", err
    again = _start(db, tmp_path)
    out, err = again.communicate(timeout=120)
    assert out.strip() == "ApprovalConsumed", err
    assert _runs(tmp_path) == 1
    kinds = [r.kind for r in store.audit_records() if r.decision_id == pending.decision_id]
    assert kinds == ["decision", "review", "consume", "outcome"]
    _verify(db)


def test_killed_during_the_action_does_not_run_it_again(db, tmp_path):
    store = db.open()
    agent = _start(db, tmp_path, mode="hang")
    _wait_for(lambda: store.find_by_idempotency_key(KEY) is not None)
    pending = store.find_by_idempotency_key(KEY)
    CliRunner().invoke(
        app,
        ["approvals", "approve", pending.approval_id, "--reviewer", "alice", *db.cli_options],
    )
    _wait_for(lambda: _runs(tmp_path) == 1)
    _kill(agent)  # consumed and running, killed before it could report

    restarted = _start(db, tmp_path)
    out, err = restarted.communicate(timeout=120)
    assert out.strip() == "ApprovalConsumed", err
    assert _runs(tmp_path) == 1
    assert store.get(pending.decision_id).consumed_at is not None
    _verify(db)


def test_killed_with_an_outcome_in_flight_loses_at_most_that_outcome(db, tmp_path):
    """The outcome of a call is committed with the writer's next transaction or within
    a short delay: a kill -9 in between loses that record, never the decision, its
    use, or the chain's integrity."""
    store = db.open()
    agent = _start(db, tmp_path, mode="reported")
    _wait_for(lambda: store.find_by_idempotency_key(KEY) is not None)
    pending = store.find_by_idempotency_key(KEY)
    CliRunner().invoke(
        app,
        ["approvals", "approve", pending.approval_id, "--reviewer", "alice", *db.cli_options],
    )
    _wait_for(lambda: _runs(tmp_path) == 1)
    assert agent.stdout is not None
    assert agent.stdout.readline().strip() == "RAN"
    assert agent.stdout.readline().strip() == "REPORTED"
    _kill(agent)  # the outcome may still have been queued

    kinds = [r.kind for r in store.audit_records() if r.decision_id == pending.decision_id]
    assert kinds[:3] == ["decision", "review", "consume"]
    assert kinds[3:] in ([], ["outcome"])
    assert store.get(pending.decision_id).consumed_at is not None
    restarted = _start(db, tmp_path)
    out, err = restarted.communicate(timeout=120)
    assert out.strip() == "ApprovalConsumed", err
    assert _runs(tmp_path) == 1
    _verify(db)
