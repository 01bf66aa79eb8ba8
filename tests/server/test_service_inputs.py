"""Input the server must refuse with a clear problem, never a 500, on SQLite and on
PostgreSQL (which cannot store U+0000 in text): control characters in names, keys
and ids, bodies that are not JSON or nest too deep, unknown query parameters, and
methods a path does not take."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gatekit import Action, DecisionRequest, Settings
from gatekit.api_keys import Role, create_key
from gatekit.engine import Engine
from gatekit.server import create_app
from tests.conftest import Database
from tests.server.conftest import REVIEW_POLICY, Server


@pytest.fixture
def served(tmp_path: Path, db: Database) -> Iterator[Server]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(REVIEW_POLICY)
    settings = Settings(data_dir=db.data_dir, database_url=db.url, policy=policy)
    engine = Engine.from_settings(settings)
    keys = {role: create_key(engine.store, name=f"{role.value}-1", role=role)[0] for role in Role}
    app = create_app(settings, engine=engine)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Server(client, engine, keys, settings.data_dir)
    engine.close()


def _decision_body(**action: Any) -> dict[str, Any]:
    """A well-formed request, then ``action`` fields written over it as sent on the wire
    (so values the client-side model would refuse still reach the server)."""
    body = DecisionRequest.for_action(Action(tool="pay_invoice")).model_dump(mode="json")
    body["action"].update(action)
    return body


@pytest.mark.parametrize(
    "body",
    [
        _decision_body(idempotency_key="retry\x00-1"),
        _decision_body(tool="pay\x00invoice"),
        _decision_body(run_id="run\x00"),
        {**_decision_body(), "review_key": "call\x00"},
    ],
    ids=["idempotency_key", "tool", "run_id", "review_key"],
)
def test_control_characters_in_names_and_keys_are_refused(served: Server, body: Any) -> None:
    answer = served.client.post("/v1/decisions", json=body, headers=served.auth(Role.AGENT))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_request"
    assert "control character (U+0000)" in answer.json()["detail"]
    assert served.engine.store.list(None) == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/decisions/dec_1%00"),
        ("POST", "/v1/decisions/dec_1%00/outcome"),
        ("GET", "/v1/approvals/apr_1%00"),
        ("POST", "/v1/approvals/apr%00/approve"),
        ("DELETE", "/v1/keys/0123%00"),
    ],
)
def test_ids_that_cannot_exist_are_refused(served: Server, method: str, path: str) -> None:
    body = {"status": "success"} if path.endswith("outcome") else {}
    answer = served.client.request(method, path, json=body, headers=served.auth(Role.ADMIN))
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_request"


def test_unknown_ids_are_not_found(served: Server) -> None:
    for method, path in [
        ("GET", "/v1/decisions/dec_0000"),
        ("GET", "/v1/approvals/apr_0000"),
        ("POST", "/v1/approvals/apr_0000/reject"),
        ("DELETE", "/v1/keys/0000000000000000"),
    ]:
        answer = served.client.request(method, path, json={}, headers=served.auth(Role.ADMIN))
        assert answer.status_code == 404, (path, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["code"] == "not_found"


def test_a_key_name_must_be_visible(served: Server) -> None:
    # The name is what a review records as its reviewer.
    for name in ["alice\x00", "al\u200bice"]:
        answer = served.client.post(
            "/v1/keys", json={"name": name, "role": "reviewer"}, headers=served.auth(Role.ADMIN)
        )
        assert answer.status_code == 422, answer.text
    assert len(served.engine.store.api_keys()) == len(Role)


def test_bodies_that_are_not_json_objects(served: Server) -> None:
    headers = served.auth(Role.AGENT)
    cases = [
        (
            {"content-type": "text/plain"},
            json.dumps(_decision_body()),
            415,
            "unsupported_media_type",
        ),
        ({}, json.dumps(_decision_body()), 415, "unsupported_media_type"),
        ({"content-type": "application/json"}, "[" * 100_000, 400, "invalid_request"),
        ({"content-type": "application/json"}, '{"action": ', 422, "invalid_request"),
    ]
    for extra, content, status, code in cases:
        answer = served.client.post("/v1/decisions", content=content, headers={**headers, **extra})
        assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert served.engine.store.list(None) == []


def test_unknown_query_parameters_are_refused(served: Server) -> None:
    # A typo must not quietly answer something else (here: the pending list).
    answer = served.client.get("/v1/approvals?stauts=approved", headers=served.auth(Role.ADMIN))
    assert answer.status_code == 422
    assert "stauts" in answer.json()["detail"] and "status" in answer.json()["detail"]


def test_unknown_routes_and_methods_are_problems(served: Server) -> None:
    missing = served.client.get("/v1/nothing-here")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = served.client.put("/v1/keys", headers=served.auth(Role.ADMIN))
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, POST"  # every method of the path, not the first


def test_every_body_has_a_size_limit(served: Server) -> None:
    document = served.client.get("/v1/openapi.json").json()
    with_body = [
        (method.upper(), path.format(decision_id="dec_1", approval_id="apr_1"))
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
        if "requestBody" in spec
    ]
    assert len(with_body) >= 7
    oversized = b'{"comment": "' + b"x" * (2 << 20) + b'"}'
    for method, path in with_body:
        headers = {**served.auth(Role.ADMIN), "content-type": "application/json"}
        answer = served.client.request(method, path, content=oversized, headers=headers)
        assert (answer.status_code, answer.json()["code"]) == (413, "body_too_large"), path
    assert served.engine.store.list(None) == []
