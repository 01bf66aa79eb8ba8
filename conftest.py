"""Shared by every test in the workspace: no test touches the real working directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gatekit import default_client


@pytest.fixture(autouse=True)
def _isolated_gatekit_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A default engine stores state under GATEKIT_DATA_DIR; keep each test's apart,
    # and build the default client afresh so it sees this test's directory.
    monkeypatch.setenv("GATEKIT_DATA_DIR", str(tmp_path / ".gatekit"))
    default_client.cache_clear()
    yield
    default_client.cache_clear()
