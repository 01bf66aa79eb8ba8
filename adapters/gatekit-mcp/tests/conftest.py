from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # gk_mcp_test_policy, for in-process tests


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
