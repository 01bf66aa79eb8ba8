"""examples/crewai_crew.py runs offline, exits 0 and tells what gatekit decided."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "crewai_crew.py"


def test_the_crewai_example_runs_offline(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert "lookup_order     allowed" in done.stdout
    assert "delete_customer  blocked   customer records are never deleted" in done.stdout
    assert "issue_refund     approved  approved by alice" in done.stdout
    assert "refunded 12.50 EUR for order A-17" in done.stdout
