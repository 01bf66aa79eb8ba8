"""The /v1 API over a durable engine: the decision lifecycle, roles, problems."""

from __future__ import annotations

from typing import Any

from gatekit import Action, DecisionRequest
from gatekit.api_keys import Role, revoke_key
from tests.server.conftest import Server


def _request(tool: str = "pay_invoice", **arguments: Any) -> DecisionRequest:
    return DecisionRequest.for_action(
        Action(tool=tool, arguments=arguments or {"amount": 5}, agent_id="billing-bot")
    )


def _post(server: Server, path: str, body: DecisionRequest, role: Role = Role.AGENT) -> Any:
    return server.client.post(
        path,
        content=body.model_dump_json(),
        headers={**server.auth(role), "content-type": "application/json"},
    )


def _kinds(server: Server) -> list[str]:
    return [record.kind for record in server.engine.store.audit_records()]


def test_review_lifecycle_binds_the_reviewer_to_the_key(server: Server) -> None:
    body = _request()
    pending = _post(server, "/v1/decisions", body).json()
    assert pending["status"] == "pending_review"

    listed = server.client.get("/v1/approvals", headers=server.auth(Role.REVIEWER)).json()
    assert [item["decision"]["approval_id"] for item in listed] == [pending["approval_id"]]
    assert listed[0]["action"]["arguments"] == {"amount": 5}

    approved = server.client.post(
        f"/v1/approvals/{pending['approval_id']}/approve",
        json={"comment": "fine"},
        headers=server.auth(Role.REVIEWER),
    )
    assert approved.json()["reviewer"] == "reviewer-1"  # from the key, not the body

    used = _post(server, f"/v1/decisions/{pending['decision_id']}/consume", body)
    assert used.json()["status"] == "approved"
    again = _post(server, f"/v1/decisions/{pending['decision_id']}/consume", body)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["code"] == "approval_consumed"
    assert again.json()["decision"]["decision_id"] == pending["decision_id"]


def test_a_second_review_is_told_it_was_already_decided(server: Server) -> None:
    pending = _post(server, "/v1/decisions", _request()).json()
    path = f"/v1/approvals/{pending['approval_id']}"
    server.client.post(path + "/reject", json={}, headers=server.auth(Role.REVIEWER))
    late = server.client.post(path + "/approve", json={}, headers=server.auth(Role.ADMIN))
    assert late.status_code == 409
    assert late.json()["code"] == "review_conflict"
    assert "already rejected" in late.json()["detail"]


def test_refused_access_records_only_its_refusal(server: Server) -> None:
    before = _kinds(server)
    cases = [
        ({}, 401),
        ({"Authorization": "Bearer gk_0000000000000000_nope"}, 401),
        (server.auth(Role.AGENT), 403),
    ]
    for headers, status in cases:
        answer = server.client.get("/v1/approvals", headers=headers)
        assert answer.status_code == status
        assert answer.json()["code"] in {"unauthenticated", "forbidden"}
    assert _kinds(server) == before + ["access_refused"] * 3
    assert server.engine.store.list() == []


def test_a_revoked_key_is_refused(server: Server) -> None:
    key_id = server.keys[Role.AGENT].split("_")[1]
    assert revoke_key(server.engine.store, key_id)
    answer = _post(server, "/v1/decisions", _request(tool="read_balance"))
    assert answer.status_code == 401
    assert server.engine.store.list() == []


def test_bad_requests_are_problems_that_change_nothing(server: Server) -> None:
    headers = {**server.auth(Role.AGENT), "content-type": "application/json"}
    malformed = server.client.post("/v1/decisions", content=b"{not json", headers=headers)
    assert malformed.status_code == 422
    assert malformed.json()["code"] == "invalid_request"
    oversized = server.client.post("/v1/decisions", content=b"x" * (2 << 20), headers=headers)
    assert oversized.status_code == 413
    assert oversized.json()["code"] == "body_too_large"
    assert server.engine.store.list() == []


def test_blocked_and_preview(server: Server) -> None:
    preview = _post(server, "/v1/preview", _request(tool="drop_table"))
    assert preview.json()["status"] == "blocked"
    assert server.engine.store.list() == []  # a dry run records nothing
    decided = _post(server, "/v1/decisions", _request(tool="drop_table")).json()
    assert decided["status"] == "blocked"
    assert decided["rule_ids"] == ["no-drops"]


def test_outcomes_are_audited(server: Server) -> None:
    decided = _post(server, "/v1/decisions", _request(tool="read_balance")).json()
    path = f"/v1/decisions/{decided['decision_id']}/outcome"
    answer = server.client.post(path, json={"status": "success"}, headers=server.auth(Role.AGENT))
    assert answer.status_code == 204
    assert server.engine.outcome(decided["decision_id"]).status == "success"
    verified = server.client.post("/v1/audit/verify", headers=server.auth(Role.ADMIN)).json()
    assert verified["ok"] and verified["records"] >= 2


def test_operations_endpoints(server: Server) -> None:
    assert server.client.get("/healthz").json() == {"status": "ok"}
    assert server.client.get("/readyz").json() == {"status": "ready"}
    _post(server, "/v1/decisions", _request())
    metrics = server.client.get("/metrics").text
    assert 'gatekit_decisions_total{status="pending_review"} 1.0' in metrics
    assert "gatekit_pending_reviews 1.0" in metrics
    assert "gatekit_decision_seconds_bucket" in metrics


def test_values_a_raw_caller_sends_are_masked_before_they_are_stored(server: Server) -> None:
    """A caller that is not gatekit's client may send real values: the server masks
    them before anything is stored or recorded, while policy still judges them."""
    card = "4111 1111 1111 1111"
    body = DecisionRequest.for_action(
        Action(tool="pay_invoice", arguments={"amount": 5, "card": card}, agent_id="raw-bot")
    )
    decided = _post(server, "/v1/decisions", body).json()
    assert decided["status"] == "pending_review"
    stored = server.engine.store.get_action(decided["decision_id"])
    assert stored is not None
    assert stored.arguments["card"].startswith("[REDACTED:")
    assert stored.arguments["amount"] == 5
    server.engine.flush()
    records = [r for r in server.engine.store.audit_records() if r.kind == "decision"]
    assert all(card not in r.to_json()["body"] for r in records)
    listed = server.client.get("/v1/approvals", headers=server.auth(Role.REVIEWER)).text
    assert card not in listed
    # The same request again (as sent) still consumes the approval it got.
    path = f"/v1/approvals/{decided['approval_id']}/approve"
    server.client.post(path, json={}, headers=server.auth(Role.REVIEWER))
    used = _post(server, f"/v1/decisions/{decided['decision_id']}/consume", body)
    assert used.json()["status"] == "approved"
