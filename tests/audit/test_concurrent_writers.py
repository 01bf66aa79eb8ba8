"""A log written at full speed by 8 threads in each of 2 processes verifies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatekit.cli import app

BUDGET_WORKER = Path(__file__).resolve().parents[1] / "engine" / "budget_worker.py"
WRITER_WORKER = Path(__file__).with_name("writer_worker.py")


def _run_together(commands: list[list[str]], envs: list[dict[str, str]], go: Path) -> list[str]:
    workers = [
        subprocess.Popen(
            command,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command, env in zip(commands, envs, strict=True)
    ]
    go.touch()
    outputs = []
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
        outputs.append(out)
    return outputs


def _verify(options: list[str]) -> str:
    result = CliRunner().invoke(app, ["audit", "verify", "--strict", *options])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_two_processes_of_eight_threads_write_a_log_that_verifies(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: allow\n")
    data_dir = tmp_path / "shared"
    go = tmp_path / "go"
    _run_together(
        [[sys.executable, str(BUDGET_WORKER), str(go), str(policy), "50"]] * 2,
        [
            {"GATEKIT_DATA_DIR": str(data_dir), "GATEKIT_WRITER_ID": writer}
            for writer in ("writer-a", "writer-b")
        ],
        go,
    )
    assert "2 chain(s)" in _verify(["--data-dir", str(data_dir)])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("shared_writer", [False, True], ids=["own-chains", "one-chain"])
def test_gated_calls_from_two_processes_of_eight_threads_verify(db, tmp_path, shared_writer):
    # One chain shared by both processes is the default (the writer id is the host
    # name): each process's remembered chain head goes stale whenever the other writes.
    go = tmp_path / "go"
    writers = ("host", "host") if shared_writer else ("writer-a", "writer-b")
    outputs = _run_together(
        [[sys.executable, str(WRITER_WORKER), str(go), "40"]] * 2,
        [{**db.env, "GATEKIT_WRITER_ID": writer} for writer in writers],
        go,
    )
    assert [json.loads(out)["ran"] for out in outputs] == [320, 320]
    store = db.open()
    records = list(store.audit_records())
    assert sum(r.kind == "decision" for r in records) == 640
    assert sum(r.kind == "outcome" for r in records) == 640
    chains = 1 if shared_writer else 2
    assert f"{chains} chain(s)" in _verify(db.cli_options)
