"""examples/langchain_agent.py runs offline, with no arguments, and shows each outcome."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "langchain_agent.py"


def test_example_runs_and_prints_each_outcome() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "paused for review: send_email" in out
    assert "[success] get_weather: Sunny and 21 C in Lisbon" in out
    assert "[error] delete_records: gatekit did not run tool 'delete_records'" in out
    assert "[success] send_email: email 'Report' sent to ops@example.com" in out
    assert "send_email      approved  approved by alice: ok to send" in out
