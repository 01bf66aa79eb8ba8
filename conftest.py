"""Shared by every test in the workspace: no test touches the real working directory
or the real home directory.

crewai must never reach the network, write into the real home directory or ask a
question (its first-run tracing prompt), so its environment is fixed here, at
import, before any test module imports crewai.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="gatekit-test-home-")
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
os.environ.update(
    {
        "HOME": _HOME,
        "XDG_CONFIG_HOME": os.path.join(_HOME, ".config"),
        "XDG_DATA_HOME": os.path.join(_HOME, ".local", "share"),
        "XDG_CACHE_HOME": os.path.join(_HOME, ".cache"),
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
        "CREWAI_TESTING": "true",  # no first-run prompt, no last-run file
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
)

import pytest  # noqa: E402

from gatekit import default_client  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_gatekit_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A default engine stores state under GATEKIT_DATA_DIR; keep each test's apart,
    # and build the default client afresh so it sees this test's directory.
    monkeypatch.setenv("GATEKIT_DATA_DIR", str(tmp_path / ".gatekit"))
    default_client.cache_clear()
    yield
    default_client.cache_clear()
