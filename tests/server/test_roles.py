"""Every route in the live OpenAPI document, called with no key, a revoked key and a
key of each role: refused (401/403) exactly where the role does not allow it, and a
refused call changes nothing but one ``access_refused`` audit record.

The walk reads the operations from /v1/openapi.json, so a new route is walked as
soon as it exists; ``ROLES`` is the specification it is checked against, and a
route missing from it fails the test until its role is written down here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from gatekit import Action, DecisionRequest
from gatekit.api_keys import Role, create_key, revoke_key
from gatekit.server.auth import ROLE_EXTENSION
from tests.server.conftest import Server

PUBLIC = None  # the operations endpoints: no key needed, by design

ROLES: dict[tuple[str, str], Role | None] = {
    ("POST", "/v1/decisions"): Role.AGENT,
    ("POST", "/v1/preview"): Role.AGENT,
    ("GET", "/v1/decisions/{decision_id}"): Role.AGENT,
    ("POST", "/v1/decisions/{decision_id}/consume"): Role.AGENT,
    ("POST", "/v1/decisions/{decision_id}/outcome"): Role.AGENT,
    ("GET", "/v1/approvals"): Role.REVIEWER,
    ("GET", "/v1/approvals/{approval_id}"): Role.REVIEWER,
    ("POST", "/v1/approvals/{approval_id}/approve"): Role.REVIEWER,
    ("POST", "/v1/approvals/{approval_id}/reject"): Role.REVIEWER,
    ("GET", "/v1/audit/export"): Role.ADMIN,
    ("POST", "/v1/audit/verify"): Role.ADMIN,
    ("GET", "/v1/audit/tail"): Role.ADMIN,
    ("GET", "/v1/keys"): Role.ADMIN,
    ("POST", "/v1/keys"): Role.ADMIN,
    ("DELETE", "/v1/keys/{key_id}"): Role.ADMIN,
    ("POST", "/v1/delegations"): Role.AGENT,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
}

_PAY = DecisionRequest.for_action(Action(tool="pay_invoice", arguments={"amount": 5}))

_UNAVAILABLE = {"delegation_issuing_disabled"}

# A valid body per request schema, so an allowed call gets past validation and a
# refused one proves the body was never the reason.
BODIES: dict[str, Any] = {
    "DecisionRequest": _PAY.model_dump(mode="json"),
    "Outcome": {"status": "success"},
    "ReviewBody": {"comment": "role walk"},
    "NewKey": {"name": "made-by-the-walk", "role": "agent"},
    "ChildRequest": {
        "chain": ["not.a.token"],
        "delegatee": "worker",
        "delegatee_key_id": "A" * 43,
        "scope": {"tools": ["read_*"]},
    },
}


@dataclass(frozen=True)
class Caller:
    name: str
    token: str | None
    role: Role | None  # None: not a valid key

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    spec: dict[str, Any]

    def body(self) -> Any:
        content = self.spec.get("requestBody", {}).get("content", {})
        if not content:
            return None
        schema = content["application/json"]["schema"]
        name = schema["$ref"].rsplit("/", 1)[-1]
        assert name in BODIES, f"{self}: add a valid {name} body to BODIES"
        return BODIES[name]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def operations(server: Server) -> list[Operation]:
    document = server.client.get("/v1/openapi.json").json()
    return [
        Operation(method.upper(), path, spec)
        for path, methods in document["paths"].items()
        for method, spec in methods.items()
    ]


def callers(server: Server) -> list[Caller]:
    revoked, record = create_key(server.engine.store, name="gone", role=Role.ADMIN)
    assert revoke_key(server.engine.store, record.key_id)
    return [
        Caller("no key", None, None),
        Caller("revoked admin key", revoked, None),
        Caller("malformed key", "not-a-gatekit-key", None),
        *(Caller(f"{role.value} key", server.keys[role], role) for role in Role),
    ]


def state(server: Server) -> dict[str, Any]:
    """Everything a call could change: decisions, keys, the audit log (queued
    outcome records included)."""
    store = server.engine.store
    server.engine.flush()
    return {
        "decisions": store.list(None, limit=10_000),
        "keys": store.api_keys(),
        "audit": [(r.kind, r.decision_id, r.body) for r in store.audit_records()],
    }


def test_every_operation_has_its_role_written_down(server: Server) -> None:
    found = {(op.method, op.path): op for op in operations(server)}
    assert sorted(found) == sorted(ROLES), "a route was added or removed: update ROLES"
    for key, role in ROLES.items():
        declared = found[key].spec.get(ROLE_EXTENSION)
        assert declared == (role.value if role else None), key
        assert bool(found[key].spec.get("security")) == (role is not None), key


def test_each_role_reaches_exactly_its_routes(server: Server) -> None:
    pending = server.client.post(
        "/v1/decisions", json=BODIES["DecisionRequest"], headers=server.auth(Role.AGENT)
    ).json()
    assert pending["status"] == "pending_review"
    _, spare = create_key(server.engine.store, name="to-revoke", role=Role.AGENT)
    ids = {
        "decision_id": pending["decision_id"],
        "approval_id": pending["approval_id"],
        "key_id": spare.key_id,
    }
    walked = 0
    for operation in operations(server):
        needed = ROLES[(operation.method, operation.path)]
        for caller in callers(server):
            before = state(server)
            answer = server.client.request(
                operation.method,
                operation.path.format(**ids),
                json=operation.body(),
                headers=caller.headers(),
            )
            where = f"{operation} as {caller.name}: {answer.status_code} {answer.text[:300]}"
            if needed is PUBLIC:
                assert answer.status_code == 200, where
                assert state(server) == before, where
            elif caller.role is None:
                assert answer.status_code == 401, where
                assert answer.json()["code"] == "unauthenticated", where
                assert answer.headers["www-authenticate"] == "Bearer", where
                _assert_only_refusal_recorded(server, before, operation, caller, 401)
            elif not caller.role.allows(needed):
                assert answer.status_code == 403, where
                assert answer.json()["code"] == "forbidden", where
                _assert_only_refusal_recorded(server, before, operation, caller, 403)
            else:
                assert answer.status_code not in {401, 403}, where
                # The fixture's server has no delegation issuing key: that 503 is the answer.
                unavailable = answer.status_code == 503 and answer.json()["code"] in _UNAVAILABLE
                assert answer.status_code < 500 or unavailable, where
            walked += 1
    assert walked == len(ROLES) * 6


def _assert_only_refusal_recorded(
    server: Server, before: dict[str, Any], operation: Operation, caller: Caller, status: int
) -> None:
    after = state(server)
    assert after["decisions"] == before["decisions"], operation
    assert after["keys"] == before["keys"], operation
    assert after["audit"][:-1] == before["audit"], operation
    kind, decision_id, body = after["audit"][-1]
    assert (kind, decision_id) == ("access_refused", None)
    data = json.loads(body)["data"]
    assert data["method"] == operation.method and data["status"] == status, data
    assert caller.token is None or caller.token not in body


@pytest.mark.parametrize("body", [b"{not json", b"[" * 100_000, b"x" * 1000])
def test_a_refusal_comes_before_the_body_is_read(server: Server, body: bytes) -> None:
    before = state(server)
    answer = server.client.post(
        "/v1/decisions", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 401
    assert state(server)["audit"][:-1] == before["audit"]
