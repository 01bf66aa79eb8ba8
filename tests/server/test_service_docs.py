"""The README's "Run a shared server" section and docker-compose.yml say what the
server does: the API table lists exactly the live OpenAPI operations with their
roles, the commands shown exist with the options shown, and the compose file is
a deployment the settings accept."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from gatekit import Settings
from gatekit.cli import app
from gatekit.engine import Engine
from gatekit.server import create_app
from gatekit.server.auth import ROLE_EXTENSION
from gatekit.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("\n## Run a shared server\n", 1)[1].split("\n## ", 1)[0]
TABLE_ROW = re.compile(r"^\| `(?P<method>[A-Z]+)` \| `(?P<path>[^`]+)` \| (?P<role>[a-z]+) \|")


def _operations() -> dict[tuple[str, str], str]:
    engine = Engine(None, MemoryStore())
    try:
        with TestClient(create_app(Settings(), engine=engine)) as client:
            document = client.get("/v1/openapi.json").json()
    finally:
        engine.close()
    return {
        (method.upper(), path): spec.get(ROLE_EXTENSION, "none")
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    }


def test_the_api_table_is_the_live_document() -> None:
    rows = [TABLE_ROW.match(line) for line in SECTION.splitlines()]
    table = {(m["method"], m["path"]): m["role"] for m in rows if m}
    assert table == _operations()


def _shown_commands() -> list[list[str]]:
    blocks = re.findall(r"```bash\n(.*?)```", SECTION, flags=re.DOTALL)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("gatekit ")]


@pytest.mark.parametrize("command", _shown_commands(), ids=" ".join)
def test_the_commands_shown_exist_with_their_options(command: list[str]) -> None:
    # click rejects an unknown command or option before it acts on --help.
    answer = CliRunner().invoke(app, [*command, "--help"])
    assert answer.exit_code == 0, answer.output


def test_compose_runs_two_replicas_on_one_postgres() -> None:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    replicas = {name: s for name, s in services.items() if "gatekit serve" in str(s.get("command"))}
    assert len(replicas) == 2 and "postgres" in services
    writer_ids = set()
    for service in replicas.values():
        env = {k: str(v) for k, v in service["environment"].items()}
        assert env["GATEKIT_DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:" in env["GATEKIT_DATABASE_URL"]
        settings = Settings(**{k.removeprefix("GATEKIT_").lower(): v for k, v in env.items()})
        writer_ids.add(settings.writer_id)
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert "/readyz" in str(service["healthcheck"]["test"])
    assert len(writer_ids) == 2 and None not in writer_ids
    policy = next(iter(replicas.values()))["environment"]["GATEKIT_POLICY"]
    assert (ROOT / policy.removeprefix("/src/")).is_file()
