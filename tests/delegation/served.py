"""A real server app with delegation issuing, on a durable SQLite engine: an offline
root, the server's own issuing root, an orchestrator and a worker, and an agent API
key. Shared by the route tests and the CLI's ``--server`` test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from gatekit import Settings
from gatekit._models import DataSensitivity, OperationClass, RiskLevel
from gatekit.api_keys import Role, create_key
from gatekit.audit import AuditRecord
from gatekit.delegation import AgentKey, DelegationChain, DelegationScope, register_key
from gatekit.engine import Engine
from gatekit.server import create_app

POLICY = """
version: 1
default: allow
rules: []
"""

PARENT_SCOPE = DelegationScope(
    max_risk=RiskLevel.MEDIUM,
    operations=frozenset({OperationClass.READ, OperationClass.UPDATE}),
    sensitivities=frozenset({DataSensitivity.INTERNAL}),
    tools=("fs.*",),
    resources=("/data",),
)
CHILD_SCOPE = DelegationScope(
    max_risk=RiskLevel.LOW,
    operations=frozenset({OperationClass.READ}),
    sensitivities=frozenset({DataSensitivity.INTERNAL}),
    tools=("fs.read",),
    resources=("/data/a",),
)


@dataclass
class Route:
    client: TestClient
    engine: Engine
    api_key: str  # an agent API key
    root: AgentKey  # an offline root that issued the orchestrator's token
    issuer: AgentKey  # the server's issuing key
    orchestrator: AgentKey
    worker: AgentKey

    def parent(self, ttl: float = 3600) -> DelegationChain:
        """root → orchestrator, held by the orchestrator."""
        return DelegationChain.issue_root(
            self.root,
            delegatee="orchestrator",
            delegatee_key_id=self.orchestrator.key_id,
            scope=PARENT_SCOPE,
            ttl=ttl,
        ).held_by(self.orchestrator)

    def two_hops(self) -> DelegationChain:
        """root → orchestrator → worker, held by the worker."""
        return (
            self.parent()
            .delegate(delegatee="worker", delegatee_key_id=self.worker.key_id, scope=PARENT_SCOPE)
            .held_by(self.worker)
        )

    def events(self, kind: str) -> list[dict[str, Any]]:
        records: list[AuditRecord] = list(self.engine.store.audit_records())
        return [r.content()["data"] for r in records if r.kind == kind]

    def audit_text(self) -> str:
        return "\n".join(r.body for r in self.engine.store.audit_records())


@contextmanager
def open_route(
    tmp_path: Path, *, issuing: bool = True, register_issuer: bool = True, **settings: Any
) -> Iterator[Route]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    issuer = AgentKey.generate("gatekit-server")
    key_file = issuer.save(tmp_path / "server-key")
    config = Settings(
        data_dir=tmp_path / "data",
        policy=policy,
        writer_id="delegation-route",
        delegation_issuer_key=key_file if issuing else None,
        **settings,
    )
    engine = Engine.from_settings(config)
    root, orchestrator, worker = (AgentKey.generate(n) for n in ("root", "orchestrator", "worker"))
    register_key(engine.store, root, root=True)
    if register_issuer:
        register_key(engine.store, issuer, root=True)
    register_key(engine.store, orchestrator)
    register_key(engine.store, worker)
    api_key, _ = create_key(engine.store, name="orchestrator-bot", role=Role.AGENT)
    try:
        with TestClient(create_app(config, engine=engine)) as client:
            yield Route(client, engine, api_key, root, issuer, orchestrator, worker)
    finally:
        engine.close()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """``app`` behind uvicorn on a real socket (an ephemeral port on 127.0.0.1), in a
    thread; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
