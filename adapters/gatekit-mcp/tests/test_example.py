"""examples/mcp_proxy.py runs, offline, and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "mcp_proxy.py"


def test_the_mcp_proxy_example_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "tools the model sees: ['get_weather']" in done.stdout
    assert "structured={'city': 'Lisbon', 'celsius': 21.5}" in done.stdout
    assert "delete_records -> isError=True: gatekit did not run tool 'delete_records': " in (
        done.stdout
    )
    assert "blocked by policy: this agent may not delete data" in done.stdout
