"""A real server app on a durable SQLite store in a temporary data dir, with one key
per role. ``TestClient`` drives it in-process; tests that need a real socket start
``gatekit serve``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from gatekit import Settings
from gatekit.api_keys import Role, create_key
from gatekit.engine import Engine
from gatekit.server import create_app

REVIEW_POLICY = """
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


@dataclass
class Server:
    client: TestClient
    engine: Engine
    keys: dict[Role, str]
    data_dir: Path

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(REVIEW_POLICY)
    settings = Settings(data_dir=tmp_path / "data", policy=policy, writer_id="server-test")
    engine = Engine.from_settings(settings)
    keys = {role: create_key(engine.store, name=f"{role.value}-1", role=role)[0] for role in Role}
    with TestClient(create_app(settings, engine=engine)) as client:
        yield Server(client, engine, keys, settings.data_dir)
    engine.close()
