"""One real ``gatekit serve`` for the HttpBackend tests (started once per session),
and fake servers for the answers a real one never gives."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.backends.fake_server import FakeServer
from tests.backends.live_server import LiveServer

POLICY = """
version: 1
default: allow
rules:
  - id: pay-needs-review
    match: {tools: ["pay_*"]}
    verdict: review
    reason: payments need a human
  - id: no-drops
    match: {tools: ["drop_*"]}
    verdict: block
    reason: never drop tables
"""


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    with tempfile.TemporaryDirectory(prefix="gatekit-live-") as tmp:
        policy = Path(tmp) / "policy.yaml"
        policy.write_text(POLICY)
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
