"""``POST /v1/delegations`` on a real app over a durable SQLite engine: a child the
server issues works for decisions (inside its scope only) and dies with any
ancestor; every refusal answers the verifier's code, is audited, and issues nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gatekit import Settings
from gatekit._exceptions import BackendError, ConfigurationError
from gatekit._models import DecisionRequest, RiskLevel
from gatekit.delegation import (
    DELEGATE_TARGET,
    PROOF_HEADER,
    AgentKey,
    ChildRequest,
    DelegationChain,
    DelegationRefused,
    issue_proof,
    register_key,
    revoke_key,
    token_hash,
)
from gatekit.engine import Engine
from gatekit.server import create_app
from tests.delegation.served import CHILD_SCOPE, Route, open_route
from tests.delegation.world import read_action, segments


@pytest.fixture
def route(tmp_path: Path) -> Iterator[Route]:
    with open_route(tmp_path) as opened:
        yield opened


# -- requests -----------------------------------------------------------------------


def _body(chain: DelegationChain, to: AgentKey, **child: Any) -> bytes:
    request = ChildRequest(
        chain=list(chain.tokens),
        delegatee=to.identity,
        delegatee_key_id=to.key_id,
        **{"scope": CHILD_SCOPE, **child},
    )
    return request.model_dump_json(exclude_none=True).encode()


def _proof(
    chain: DelegationChain,
    body: bytes,
    *,
    signer: AgentKey | None = None,
    target: str = DELEGATE_TARGET,
    at: float | None = None,
) -> str:
    key = signer or chain.key
    assert key is not None
    return issue_proof(
        key, leaf_token=chain.leaf, body=body, audience="gatekit", target=target, now=at
    )


def _send(
    route: Route, body: bytes, proof: str | None, *, api_key: str | None = "agent"
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {route.api_key if api_key == 'agent' else api_key}"
    if proof is not None:
        headers[PROOF_HEADER] = proof
    return route.client.post("/v1/delegations", content=body, headers=headers)


def _ask(route: Route, chain: DelegationChain, to: AgentKey, **child: Any) -> httpx.Response:
    body = _body(chain, to, **child)
    return _send(route, body, _proof(chain, body))


def _decide(route: Route, chain: DelegationChain, **fields: Any) -> dict[str, Any]:
    """A decision through the server's own /v1/decisions, under ``chain``."""
    action = read_action(**fields)
    request = DecisionRequest.for_action(action)
    request = request.model_copy(update={"delegation": chain.envelope(action)})
    answer = route.client.post(
        "/v1/decisions",
        content=request.model_dump_json(),
        headers={"Authorization": f"Bearer {route.api_key}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    decision: dict[str, Any] = answer.json()
    return decision


def _delegation_check(decision: dict[str, Any]) -> str:
    return str(next(c["detail"] for c in decision["checks"] if c["name"] == "delegation"))


def assert_refused(route: Route, answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == code
    assert "token" not in problem and "chain" not in problem
    refused = route.events("delegation_refused")
    assert refused and refused[-1]["code"] == code
    assert route.events("delegation_issued") == [], "nothing may be issued"


# -- issuing, and using what was issued ---------------------------------------------


def test_an_issued_child_decides_inside_its_scope_only(route: Route) -> None:
    parent = route.parent(ttl=1800)
    answer = _ask(route, parent, route.worker)
    assert answer.status_code == 201, answer.text
    issued = answer.json()
    assert issued["chain"] == [*parent.tokens, issued["token"]]
    header, claims, _ = segments(issued["token"])
    assert header["kid"] == route.issuer.key_id
    assert claims["iss"] == "gatekit-server"
    assert claims["for"] == "orchestrator" == issued["issued_for"]
    assert claims["sub"] == "worker" and claims["cnf"] == {"jkt": route.worker.key_id}
    assert claims["parent"] == token_hash(parent.leaf)
    assert claims["scope"] == CHILD_SCOPE.claims()
    # By default the child lives what its parent has left (half an hour here).
    assert claims["exp"] == segments(parent.leaf)[1]["exp"] == issued["expires_at"]

    child = DelegationChain(tuple(issued["chain"])).held_by(route.worker)
    allowed = _decide(route, child)
    assert allowed["status"] == "allowed"
    assert _delegation_check(allowed) == "verified: root root, depth 2"
    outside = _decide(route, child, tool="fs.write", operation_class="update")
    assert outside["status"] == "blocked"
    assert _delegation_check(outside) == "out_of_scope.operations"

    [event] = route.events("delegation_issued")
    assert event["issued_for"] == "orchestrator" and event["delegatee"] == "worker"
    assert event["token_id"] == issued["token_id"] == claims["jti"]
    assert issued["token"] not in route.audit_text()  # names and hashes only
    assert route.api_key not in route.audit_text()


def test_the_client_helper_asks_the_server(route: Route) -> None:
    parent = route.parent()
    child = parent.request_child(
        "http://testserver",
        api_key=route.api_key,
        delegatee="worker",
        delegatee_key_id=route.worker.key_id,
        scope=CHILD_SCOPE,
        ttl=300,
        http=route.client,
    )
    assert child.tokens[:1] == parent.tokens and len(child.tokens) == 2
    assert segments(child.leaf)[1]["exp"] == segments(child.leaf)[1]["iat"] + 300
    assert _decide(route, child.held_by(route.worker))["status"] == "allowed"

    with pytest.raises(DelegationRefused, match=r"scope_widened\.tools"):
        parent.request_child(
            "http://testserver",
            api_key=route.api_key,
            delegatee="worker",
            delegatee_key_id=route.worker.key_id,
            scope=CHILD_SCOPE.model_copy(update={"tools": ("net.*",)}),
            http=route.client,
        )


def _answering(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_the_client_helper_takes_nothing_but_its_own_chain_plus_one(route: Route) -> None:
    parent, foreign = route.parent(), route.parent()
    forged = {
        "token": "x.y.z",
        "chain": [*foreign.tokens, "x.y.z"],
        "token_id": "j",
        "issued_for": "orchestrator",
        "expires_at": 1,
    }

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    cases: list[tuple[Callable[[httpx.Request], httpx.Response], str]] = [
        (lambda request: httpx.Response(201, json=forged), "does not extend this one"),
        (lambda request: httpx.Response(201, json={"token": 1}), "not a delegation"),
        (lambda request: httpx.Response(502, text="bad gateway"), "without a problem code"),
        (down, "could not ask"),
    ]
    for handler, message in cases:
        with _answering(handler) as http, pytest.raises(BackendError, match=message):
            parent.request_child(
                "http://gatekit.invalid",
                api_key=route.api_key,
                delegatee="worker",
                delegatee_key_id=route.worker.key_id,
                scope=CHILD_SCOPE,
                http=http,
            )


@pytest.mark.parametrize("revoked", ["root", "orchestrator", "worker"])
def test_revoking_any_ancestor_of_the_caller_kills_the_child(route: Route, revoked: str) -> None:
    # The worker holds root → orchestrator → worker and asks for a child for a helper.
    helper = AgentKey.generate("helper")
    register_key(route.engine.store, helper)
    answer = _ask(route, route.two_hops(), helper)
    assert answer.status_code == 201, answer.text
    child = DelegationChain(tuple(answer.json()["chain"])).held_by(helper)
    assert _decide(route, child, agent_id="helper")["status"] == "allowed"

    revoke_key(route.engine.store, getattr(route, revoked).key_id)
    refused = _decide(route, child, agent_id="helper")
    assert refused["status"] == "blocked"
    assert _delegation_check(refused) == "ancestor_revoked"


# -- refusals -------------------------------------------------------------------------


def test_no_proof(route: Route) -> None:
    answer = _send(route, _body(route.parent(), route.worker), None)
    assert_refused(route, answer, 403, "missing_proof")


def test_a_proof_that_is_not_a_jws(route: Route) -> None:
    answer = _send(route, _body(route.parent(), route.worker), "not.a.proof")
    assert_refused(route, answer, 403, "malformed")


def test_a_proof_with_a_flipped_signature_bit(route: Route) -> None:
    parent = route.parent()
    body = _body(parent, route.worker)
    head, claims, signature = _proof(parent, body).split(".")
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert_refused(route, _send(route, body, f"{head}.{claims}.{flipped}"), 403, "bad_signature")


def test_a_proof_for_a_decision_is_not_one_for_a_delegation(route: Route) -> None:
    parent = route.parent()
    body = _body(parent, route.worker)
    answer = _send(route, body, _proof(parent, body, target="decide"))
    assert_refused(route, answer, 403, "wrong_target")


def test_a_stale_proof(route: Route) -> None:
    parent = route.parent()
    body = _body(parent, route.worker)
    answer = _send(route, body, _proof(parent, body, at=time.time() - 120))
    assert_refused(route, answer, 403, "stale_proof")


def test_a_replayed_proof_issues_once(route: Route) -> None:
    parent = route.parent()
    body = _body(parent, route.worker)
    proof = _proof(parent, body)
    assert _send(route, body, proof).status_code == 201
    again = _send(route, body, proof)
    assert again.status_code == 403 and again.json()["code"] == "replay"
    assert len(route.events("delegation_issued")) == 1
    assert route.events("delegation_refused")[-1]["code"] == "replay"


def test_a_body_changed_after_signing(route: Route) -> None:
    parent = route.parent()
    body = _body(parent, route.worker)
    proof = _proof(parent, body)
    wider = json.loads(body)
    wider["scope"]["tools"] = ["fs.*"]  # still inside the parent: only the proof objects
    tampered = json.dumps(wider).encode()
    assert_refused(route, _send(route, tampered, proof), 403, "body_mismatch")


def test_the_same_json_in_other_bytes_is_not_what_was_signed(route: Route) -> None:
    parent = route.parent()
    body = _body(parent, route.worker)
    proof = _proof(parent, body)
    respaced = json.dumps(json.loads(body), indent=1).encode()  # the server never re-serialises
    assert_refused(route, _send(route, respaced, proof), 403, "body_mismatch")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"tools": ("fs.*", "net.*")}, "scope_widened.tools"),
        ({"max_risk": RiskLevel.HIGH}, "scope_widened.max_risk"),
        ({"resources": None}, "scope_widened.resources"),
    ],
)
def test_a_wider_scope(route: Route, change: dict[str, Any], code: str) -> None:
    answer = _ask(route, route.parent(), route.worker, scope=CHILD_SCOPE.model_copy(update=change))
    assert_refused(route, answer, 403, code)


def test_a_caller_that_is_not_the_leafs_delegatee(route: Route) -> None:
    # The worker got hold of the orchestrator's chain and signs with its own key.
    parent = route.parent()
    body = _body(parent, route.worker)
    answer = _send(route, body, _proof(parent, body, signer=route.worker))
    assert_refused(route, answer, 403, "wrong_delegatee")


def test_a_revoked_ancestor(route: Route) -> None:
    chain = route.two_hops()
    revoke_key(route.engine.store, route.orchestrator.key_id)
    helper = AgentKey.generate("helper")
    assert_refused(route, _ask(route, chain, helper), 403, "ancestor_revoked")


def test_a_child_that_would_outlive_its_parent(route: Route) -> None:
    answer = _ask(route, route.parent(ttl=600), route.worker, ttl=3600)
    assert_refused(route, answer, 403, "expiry_outlives_parent")


def test_a_chain_at_the_depth_limit(tmp_path: Path) -> None:
    with open_route(tmp_path, delegation_max_depth=2) as route:
        helper = AgentKey.generate("helper")
        assert_refused(route, _ask(route, route.two_hops(), helper), 403, "chain_too_deep")


def test_issuing_disabled(tmp_path: Path) -> None:
    with open_route(tmp_path, issuing=False) as route:
        answer = _ask(route, route.parent(), route.worker)
        assert_refused(route, answer, 503, "delegation_issuing_disabled")


def test_an_issuing_key_that_is_not_a_registered_root(tmp_path: Path) -> None:
    with open_route(tmp_path, register_issuer=False) as route:
        answer = _ask(route, route.parent(), route.worker)
        assert_refused(route, answer, 503, "issuer_untrusted")


def test_a_check_that_breaks_issues_nothing(route: Route, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the store went away")

    issuer = route.client.app.state.delegation_issuer  # type: ignore[attr-defined]
    monkeypatch.setattr(issuer.verifier, "verify_issuance", broken)
    answer = _ask(route, route.parent(), route.worker)
    assert_refused(route, answer, 500, "issuing_error.RuntimeError")


@pytest.mark.parametrize("api_key", [None, "gk_0000000000000000_nope"])
def test_an_agent_api_key_is_required(route: Route, api_key: str | None) -> None:
    parent = route.parent()
    body = _body(parent, route.worker)
    answer = _send(route, body, _proof(parent, body), api_key=api_key)
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthenticated"
    assert route.events("access_refused")
    assert route.events("delegation_issued") == []


@pytest.mark.parametrize(
    "mangle",
    [
        lambda body: {**body, "scope": {**body["scope"], "budget": "5"}},
        lambda body: {**body, "delegatee_key_id": "../../etc/passwd"},
        lambda body: {**body, "ttl": -1},
        lambda body: {**body, "extra": True},
    ],
)
def test_an_invalid_request_is_a_422(route: Route, mangle: Callable[[Any], Any]) -> None:
    parent = route.parent()
    body = json.dumps(mangle(json.loads(_body(parent, route.worker)))).encode()
    answer = _send(route, body, _proof(parent, body))
    assert answer.status_code == 422
    assert answer.json()["code"] == "invalid_request"
    assert route.events("delegation_issued") == []


def test_an_unsafe_issuer_key_file_stops_the_server(tmp_path: Path) -> None:
    key_file = AgentKey.generate("gatekit-server").save(tmp_path / "keys")
    key_file.chmod(0o644)
    config = Settings(data_dir=tmp_path / "data", delegation_issuer_key=key_file)
    engine = Engine.from_settings(config)
    try:
        with pytest.raises(ConfigurationError, match="readable by others"):
            create_app(config, engine=engine)
    finally:
        engine.close()


def test_the_route_is_documented(route: Route) -> None:
    spec = route.client.get("/v1/openapi.json").json()
    operation = spec["paths"]["/v1/delegations"]["post"]
    assert {p["name"] for p in operation["parameters"]} >= {PROOF_HEADER}
    assert {"201", "401", "403", "422", "503"} <= set(operation["responses"])
