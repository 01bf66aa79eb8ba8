"""One real ``gatekit serve`` for the HttpBackend tests (started once per session),
and fake servers for the answers a real one never gives."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.fake_server import FakeServer
from tests.backends.live_server import LiveServer
from tests.server.conftest import REVIEW_POLICY  # the same rules as the in-process server tests


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="gatekit-live-") as tmp:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(REVIEW_POLICY)
        server = LiveServer.start(Path(tmp) / "data", policy)
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer.start()
    try:
        yield server
    finally:
        server.stop()
