"""The operations endpoints: what a load balancer, an orchestrator and Prometheus
see, including when the store goes away."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from gatekit import Action, DecisionRequest, Settings
from gatekit.api_keys import Role, create_key
from gatekit.engine import Engine
from gatekit.server import create_app
from gatekit.store import SqliteStore
from tests.server.conftest import Server

METRICS = {
    "gatekit_decisions": "counter",
    "gatekit_decision_seconds": "histogram",
    "gatekit_pending_reviews": "gauge",
    "gatekit_store_errors": "counter",
}


def _families(server: Server) -> dict[str, object]:
    answer = server.client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(answer.text)}


def test_metrics_are_named_typed_and_explained(server: Server) -> None:
    families = _families(server)
    for name, kind in METRICS.items():
        family = families[name]
        assert family.type == kind, name  # type: ignore[attr-defined]
        assert family.documentation, name  # type: ignore[attr-defined]


def test_a_lost_store_is_not_ready_a_500_and_a_counted_store_error(tmp_path: Path) -> None:
    engine = Engine(None, SqliteStore.in_directory(tmp_path))
    key = create_key(engine.store, name="agent-1", role=Role.AGENT)[0]
    client = TestClient(
        create_app(Settings(data_dir=tmp_path), engine=engine), raise_server_exceptions=False
    )
    assert client.get("/readyz").status_code == 200
    engine.store.close()  # the database is gone

    not_ready = client.get("/readyz")
    assert (not_ready.status_code, not_ready.json()["code"]) == (503, "not_ready")
    assert client.get("/healthz").status_code == 200  # the process is still up
    body = DecisionRequest.for_action(Action(tool="read_balance")).model_dump_json()
    headers = {"Authorization": f"Bearer {key}", "content-type": "application/json"}
    failed = client.post("/v1/decisions", content=body, headers=headers)
    assert (failed.status_code, failed.json()["code"]) == (500, "internal_error")
    assert "database" not in failed.text.lower()  # the cause goes to the log, not the caller
    scraped = client.get("/metrics")
    assert scraped.status_code == 200  # monitoring still answers, and shows the failures
    assert "gatekit_store_errors_total 1.0" in scraped.text  # the decision
    assert "gatekit_pending_reviews" not in scraped.text  # unknown now: left out
    assert "gatekit_store_errors_total 2.0" in client.get("/metrics").text  # + that scrape
