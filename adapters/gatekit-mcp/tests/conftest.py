from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # gk_mcp_test_policy, for in-process tests


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's engine state (decisions, reviews, audit) in its own directory, for
    in-process backends and the proxies the test starts alike: reviews are durable
    and found again by key, so tests must not share them."""
    data_dir = tmp_path / "gatekit-data"
    monkeypatch.setenv("GATEKIT_DATA_DIR", str(data_dir))
    return data_dir
