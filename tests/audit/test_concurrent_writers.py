"""A log written at full speed by 8 threads in each of 2 processes verifies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from gatekit.cli import app

WORKER = Path(__file__).resolve().parents[1] / "engine" / "budget_worker.py"


def test_two_processes_of_eight_threads_write_a_log_that_verifies(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: allow\n")
    data_dir = tmp_path / "shared"
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(go), str(policy), "50"],
            env={**os.environ, "GATEKIT_DATA_DIR": str(data_dir), "GATEKIT_WRITER_ID": writer},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for writer in ("writer-a", "writer-b")
    ]
    go.touch()
    for worker in workers:
        _, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err
    result = CliRunner().invoke(app, ["audit", "verify", "--strict", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "2 chain(s)" in " ".join(result.output.split())
