"""One test per attack on delegated requests. Each asserts the exact reason code
(in the decision's ``delegation`` check and its audit record), the generic reason
the caller sees, and that the policy was never asked."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import replace

import pytest

from gatekit._models import DataSensitivity, OperationClass, RiskLevel
from gatekit.delegation import (
    AgentKey,
    DelegationChain,
    DelegationConfig,
    KeyRecord,
    issue_delegation,
    issue_proof,
    register_key,
    revoke_key,
    token_hash,
)
from gatekit.store import SqliteStore
from tests.delegation.world import (
    BROAD,
    NARROW,
    World,
    assert_accepted,
    assert_refused,
    b64,
    edit,
    read_action,
    reassemble,
    segments,
    unb64,
    with_envelope,
)


@pytest.fixture
def world() -> World:
    return World()


def _proof(request_delegation: object) -> str:
    return request_delegation.proof  # type: ignore[attr-defined,no-any-return]


# -- the proof ----------------------------------------------------------------------


def test_no_proof(world: World) -> None:
    request = with_envelope(world.request(world.worker_chain()), proof="")
    assert_refused(world, world.decide(request), "missing_proof")


def test_flipped_bit_in_the_proof_signature(world: World) -> None:
    request = world.request(world.worker_chain())
    head, claims, signature = _proof(request.delegation).split(".")
    raw = bytearray(unb64(signature))
    raw[7] ^= 0x01
    request = with_envelope(request, proof=f"{head}.{claims}.{b64(bytes(raw))}")
    assert_refused(world, world.decide(request), "bad_signature")


def test_body_changed_after_signing(world: World) -> None:
    request = world.request(world.worker_chain())
    body = request.delegation.body.replace(b"report", b"reporT")  # type: ignore[union-attr]
    assert_refused(world, world.decide(with_envelope(request, body=body)), "body_mismatch")


def test_action_changed_after_signing(world: World) -> None:
    request = world.request(world.worker_chain())
    other = read_action("/data/a/other.txt")
    changed = request.model_copy(update={"action": other, "action_digest": other.digest()})
    assert_refused(world, world.decide(changed), "body_mismatch")


def test_replay_of_a_valid_request(world: World) -> None:
    request = world.request(world.worker_chain())
    assert_accepted(world, world.decide(request))
    world.policy.calls.clear()
    assert_refused(world, world.decide(request), "replay")


def test_two_identical_requests_at_once_one_wins(tmp_path) -> None:  # type: ignore[no-untyped-def]
    world = World(store=SqliteStore(tmp_path / "g.db"))
    request = world.request(world.worker_chain())
    barrier = threading.Barrier(8)
    decisions = []

    def send() -> None:
        barrier.wait()
        decisions.append(world.decide(request))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(d.status.value for d in decisions)
    assert statuses == ["allowed"] + ["blocked"] * 7
    assert all(d.checks[0].detail == "replay" for d in decisions if d.status.value == "blocked")
    assert len(world.policy.calls) == 1


def test_a_forged_proof_reusing_a_real_nonce_does_not_burn_it(world: World) -> None:
    chain = world.worker_chain()
    legit = world.request(chain, nonce="n" * 32)
    mallory = AgentKey("worker", AgentKey.generate("x").private_key)  # not the worker's key
    forged_proof = issue_proof(
        mallory,
        leaf_token=chain.leaf,
        body=legit.delegation.body,  # type: ignore[union-attr]
        audience="gatekit",
        now=world.now,
        nonce="n" * 32,
    )
    # The attacker names the worker's key id, so lookup succeeds and the signature fails.
    header, claims, signature = segments(forged_proof)
    forged = reassemble({**header, "kid": world.worker.key_id}, claims, signature)
    assert_refused(world, world.decide(with_envelope(legit, proof=forged)), "bad_signature")
    assert_accepted(world, world.decide(legit))


@pytest.mark.parametrize(
    ("offset", "code"),
    [(-61, "stale_proof"), (-60, None), (5, None), (6, "future_proof")],
)
def test_proof_time_window_edges(world: World, offset: int, code: str | None) -> None:
    request = world.request(world.worker_chain(), at=world.now + offset)
    decision = world.decide(request)
    if code is None:
        assert_accepted(world, decision)
    else:
        assert_refused(world, decision, code)


# -- headers ------------------------------------------------------------------------


def test_alg_none(world: World) -> None:
    request = world.request(world.worker_chain())
    header, claims, _ = segments(_proof(request.delegation))
    unsigned = reassemble({**header, "alg": "none"}, claims, "")
    unsigned_with_sig = unsigned + "AAAA"
    for proof in (unsigned, unsigned_with_sig):
        world.policy.calls.clear()
        decision = world.decide(with_envelope(request, proof=proof))
        code = "malformed" if proof == unsigned else "alg_not_allowed"
        assert_refused(world, decision, code)


def test_hs256_signed_with_the_public_key(world: World) -> None:
    request = world.request(world.worker_chain())
    header, claims, _ = segments(_proof(request.delegation))
    head = b64(json.dumps({**header, "alg": "HS256"}).encode())
    body = b64(json.dumps(claims).encode())
    secret = world.worker.public_pem.encode()
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{head}.{body}.{b64(mac)}"
    assert_refused(world, world.decide(with_envelope(request, proof=forged)), "alg_not_allowed")


def test_an_algorithm_other_than_the_key_records(world: World) -> None:
    odd = AgentKey.generate("odd")
    record = register_key(World().store, odd)  # a record to copy, in another store
    world.store.add_agent_key(replace(record, algorithm="ES256"))
    chain = world.root_chain(to=odd)
    request = world.request(chain, read_action(agent_id="odd"))
    assert_refused(world, world.decide(request), "alg_mismatch")


@pytest.mark.parametrize(
    "header", [{"jku": "https://evil/jwks"}, {"x5u": "https://evil/x"}, {"crit": ["exp"]}]
)
def test_key_source_and_crit_headers(world: World, header: dict[str, object]) -> None:
    request = world.request(world.worker_chain())
    tampered = edit(_proof(request.delegation), header=header)
    assert_refused(
        world, world.decide(with_envelope(request, proof=tampered)), "header_not_allowed"
    )


def test_embedded_jwk_header(world: World) -> None:
    request = world.request(world.worker_chain())
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}
    tampered = edit(_proof(request.delegation), header={"jwk": jwk})
    assert_refused(
        world, world.decide(with_envelope(request, proof=tampered)), "header_not_allowed"
    )


@pytest.mark.parametrize(
    ("kid", "code"),
    [
        ("A" * 43, "unknown_key"),
        ("../../etc/passwd", "bad_key_id"),
        ("x' OR '1'='1", "bad_key_id"),
        ("", "bad_key_id"),
    ],
)
def test_unknown_path_like_and_sql_like_key_ids(world: World, kid: str, code: str) -> None:
    request = world.request(world.worker_chain())
    tampered = edit(_proof(request.delegation), header={"kid": kid})
    assert_refused(world, world.decide(with_envelope(request, proof=tampered)), code)


def test_key_of_x_claiming_identity_y(world: World) -> None:
    chain = world.worker_chain()
    action = read_action()
    body = chain.envelope(action, now=world.now).body
    liar = AgentKey("worker", world.orchestrator.private_key)  # orchestrator's key, worker's name
    proof = issue_proof(liar, leaf_token=chain.leaf, body=body, audience="gatekit", now=world.now)
    request = with_envelope(world.request(chain, action), proof=proof)
    assert_refused(world, world.decide(request), "issuer_mismatch")


def test_revoked_key(world: World) -> None:
    revoke_key(world.store, world.worker.key_id, at=world.now - 1)
    assert_refused(world, world.decide(world.request(world.worker_chain())), "key_revoked")


def test_key_outside_its_validity_window(world: World) -> None:
    late = AgentKey.generate("late")
    register_key(world.store, late, not_before=world.now + 100)
    request = world.request(world.root_chain(to=late), read_action(agent_id="late"))
    assert_refused(world, world.decide(request), "key_inactive")


# -- strict parsing -----------------------------------------------------------------


def test_duplicate_json_keys(world: World) -> None:
    request = world.request(world.worker_chain())
    header, claims, signature = segments(_proof(request.delegation))
    text = json.dumps(claims)[:-1] + ', "bh": "' + "0" * 64 + '"}'
    forged = reassemble(header, text, signature)
    assert_refused(world, world.decide(with_envelope(request, proof=forged)), "malformed")


def test_nan_in_a_claim(world: World) -> None:
    request = world.request(world.worker_chain())
    header, claims, signature = segments(_proof(request.delegation))
    text = json.dumps({**claims, "iat": 0})[:-1].replace('"iat": 0', '"iat": NaN') + "}"
    forged = reassemble(header, text, signature)
    assert_refused(world, world.decide(with_envelope(request, proof=forged)), "malformed")


@pytest.mark.parametrize("exp", [True, "999", 1.5e12, None])
def test_wrongly_typed_exp(world: World, exp: object) -> None:
    chain = world.worker_chain()
    tampered = edit(chain.tokens[1], exp=exp)
    request = with_envelope(world.request(chain), chain=[chain.tokens[0], tampered])
    assert_refused(world, world.decide(request), "malformed")


def test_oversized_token(world: World) -> None:
    chain = world.worker_chain()
    huge = edit(chain.tokens[1], jti="x" * 9000)
    request = with_envelope(world.request(chain), chain=[chain.tokens[0], huge])
    assert_refused(world, world.decide(request), "too_large")


# -- tokens -------------------------------------------------------------------------


def test_tampered_scope_in_a_token(world: World) -> None:
    chain = world.worker_chain()
    wider = edit(chain.tokens[1], scope={**NARROW.claims(), "tools": ["*"]})
    request = world.request(DelegationChain((chain.tokens[0], wider), world.worker))
    assert_refused(world, world.decide(request), "bad_token_signature")


def test_a_request_proof_presented_as_a_delegation_token(world: World) -> None:
    chain = world.worker_chain()
    request = world.request(chain)
    posing = with_envelope(request, chain=[chain.tokens[0], _proof(request.delegation)])
    assert_refused(world, world.decide(posing), "typ_not_allowed")


def test_a_self_issued_root(world: World) -> None:
    own = DelegationChain.issue_root(
        world.worker,
        delegatee="worker",
        delegatee_key_id=world.worker.key_id,
        scope=BROAD,
        now=world.now,
    ).held_by(world.worker)
    assert_refused(world, world.decide(world.request(own)), "untrusted_root")


def test_a_truncated_chain(world: World) -> None:
    chain = world.worker_chain()
    leaf_only = DelegationChain((chain.tokens[1],), world.worker)
    assert_refused(world, world.decide(world.request(leaf_only)), "chain_broken")


def test_a_child_signed_by_a_key_other_than_its_parents_delegatee(world: World) -> None:
    root_chain = world.root_chain()
    # Another key registered to the same identity: right name, not the key delegated to.
    stranger = AgentKey.generate("orchestrator")
    register_key(world.store, stranger)
    child = issue_delegation(
        stranger,
        delegatee="worker",
        delegatee_key_id=world.worker.key_id,
        scope=NARROW,
        audience="gatekit",
        ttl=600,
        parent=root_chain.leaf,
        now=world.now,
    )
    request = world.request(DelegationChain((root_chain.leaf, child), world.worker))
    assert_refused(world, world.decide(request), "wrong_signer")


def test_a_spliced_parent_link(world: World) -> None:
    other_root = world.root_chain()  # another token for the same orchestrator
    chain = world.worker_chain()
    spliced = DelegationChain((other_root.leaf, chain.tokens[1]), world.worker)
    assert_refused(world, world.decide(world.request(spliced)), "chain_broken")


def test_depth_over_the_limit() -> None:
    world = World(config=DelegationConfig(max_depth=2))
    chain = world.worker_chain()
    helper = AgentKey.generate("helper")
    register_key(world.store, helper)
    deeper = chain.delegate(
        delegatee="helper", delegatee_key_id=helper.key_id, scope=NARROW, ttl=60, now=world.now
    ).held_by(helper)
    request = world.request(deeper, read_action(agent_id="helper"))
    assert_refused(world, world.decide(request), "chain_too_deep")


def test_a_cycle_in_the_chain(world: World) -> None:
    chain = world.worker_chain()
    looped = DelegationChain((chain.tokens[0], chain.tokens[1], chain.tokens[1]), world.worker)
    assert_refused(world, world.decide(world.request(looped)), "chain_cycle")


def _helper_chain(world: World, middle_ttl: float, leaf_ttl: float) -> DelegationChain:
    """root → worker (``middle_ttl``) → helper (``leaf_ttl``), held by the helper."""
    helper = AgentKey.generate("helper")
    register_key(world.store, helper)
    chain = world.worker_chain(ttl=middle_ttl).delegate(
        delegatee="helper",
        delegatee_key_id=helper.key_id,
        scope=NARROW,
        ttl=leaf_ttl,
        now=world.now,
    )
    return chain.held_by(helper)


def test_an_expired_intermediate(world: World) -> None:
    chain = _helper_chain(world, middle_ttl=60, leaf_ttl=30)
    world.now += 100  # the root token lives an hour; the worker's token 60 s
    request = world.request(chain, read_action(agent_id="helper"))
    assert_refused(world, world.decide(request), "token_expired")


def test_a_chain_missing_its_middle(world: World) -> None:
    chain = _helper_chain(world, middle_ttl=600, leaf_ttl=300)
    skipped = DelegationChain((chain.tokens[0], chain.tokens[2]), chain.key)
    request = world.request(skipped, read_action(agent_id="helper"))
    assert_refused(world, world.decide(request), "chain_broken")


def test_too_many_tokens(world: World) -> None:
    chain = world.worker_chain()
    request = with_envelope(world.request(chain), chain=[chain.tokens[0]] * 33)
    assert_refused(world, world.decide(request), "too_large")


def test_an_oversized_body(world: World) -> None:
    request = with_envelope(world.request(world.worker_chain()), body=b"x" * (1024 * 1024 + 1))
    assert_refused(world, world.decide(request), "too_large")


def test_a_child_whose_expiry_outlives_its_parent(world: World) -> None:
    # `delegate()` refuses to make this child; a holder signing by hand still can.
    root_chain = world.root_chain(ttl=3600)
    child = issue_delegation(
        world.orchestrator,
        delegatee="worker",
        delegatee_key_id=world.worker.key_id,
        scope=NARROW,
        audience="gatekit",
        ttl=7200,
        parent=root_chain.leaf,
        now=world.now,
    )
    request = world.request(DelegationChain((root_chain.leaf, child), world.worker))
    assert_refused(world, world.decide(request), "expiry_outlives_parent")


def test_a_not_yet_valid_token(world: World) -> None:
    early = DelegationChain.issue_root(
        world.root,
        delegatee="worker",
        delegatee_key_id=world.worker.key_id,
        scope=NARROW,
        now=world.now + 600,
    ).held_by(world.worker)
    assert_refused(world, world.decide(world.request(early)), "token_not_yet_valid")


def test_a_token_for_b_used_by_c(world: World) -> None:
    carol = AgentKey.generate("carol")
    register_key(world.store, carol)
    stolen = DelegationChain(world.worker_chain().tokens, carol)
    assert_refused(world, world.decide(world.request(stolen)), "wrong_delegatee")


def test_a_proof_bound_to_another_token(world: World) -> None:
    chain = world.worker_chain()
    other = world.worker_chain()  # another, equally valid leaf
    request = world.request(other)
    assert_refused(
        world, world.decide(with_envelope(request, chain=list(chain.tokens))), "token_mismatch"
    )


def test_a_token_for_another_audience(world: World) -> None:
    chain = DelegationChain.issue_root(
        world.root,
        delegatee="worker",
        delegatee_key_id=world.worker.key_id,
        scope=NARROW,
        audience="someone-else",
        now=world.now,
    ).held_by(world.worker)
    assert_refused(world, world.decide(world.request(chain)), "wrong_audience")


# -- narrowing ----------------------------------------------------------------------

WIDER = {
    "max_risk": RiskLevel.HIGH,
    "operations": frozenset({OperationClass.READ, OperationClass.DELETE}),
    "sensitivities": frozenset({DataSensitivity.INTERNAL, DataSensitivity.PII}),
    "tools": ("fs.*", "shell.run"),
    "resources": ("/data", "/etc"),
    "budget": 101,
}


@pytest.mark.parametrize("field", sorted(WIDER))
def test_a_child_widening_a_field(world: World, field: str) -> None:
    chain = world.worker_chain(NARROW.model_copy(update={field: WIDER[field]}))
    assert_refused(world, world.decide(world.request(chain)), f"scope_widened.{field}")


@pytest.mark.parametrize("field", sorted(WIDER))
def test_a_child_omitting_a_field_widens_it(world: World, field: str) -> None:
    chain = world.worker_chain(NARROW.model_copy(update={field: None}))
    assert_refused(world, world.decide(world.request(chain)), f"scope_widened.{field}")


def test_a_broader_tool_wildcard(world: World) -> None:
    chain = world.worker_chain(NARROW.model_copy(update={"tools": ("f*",)}))
    assert_refused(world, world.decide(world.request(chain)), "scope_widened.tools")


def test_a_resource_escaping_with_dot_dot_in_the_scope(world: World) -> None:
    chain = world.worker_chain(NARROW.model_copy(update={"resources": ("/data/../etc",)}))
    assert_refused(world, world.decide(world.request(chain)), "scope_widened.resources")


def test_a_resource_escaping_with_dot_dot_in_the_action(world: World) -> None:
    request = world.request(world.worker_chain(), read_action("/data/a/../secret"))
    assert_refused(world, world.decide(request), "out_of_scope.resources")


def test_a_wildcard_resource_is_not_a_glob(world: World) -> None:
    scope = NARROW.model_copy(update={"resources": ("/data/a/*",)})
    request = world.request(world.worker_chain(scope), read_action("/data/a/secret"))
    assert_refused(world, world.decide(request), "out_of_scope.resources")


def test_an_action_above_the_max_risk(world: World) -> None:
    request = world.request(world.worker_chain(), read_action(risk_level="medium"))
    assert_refused(world, world.decide(request), "out_of_scope.max_risk")


def test_a_tool_outside_the_subset(world: World) -> None:
    request = world.request(world.worker_chain(), read_action(tool="fs.write"))
    assert_refused(world, world.decide(request), "out_of_scope.tools")


def test_an_operation_and_a_sensitivity_outside_the_scope(world: World) -> None:
    request = world.request(world.worker_chain(), read_action(operation_class="update"))
    assert_refused(world, world.decide(request), "out_of_scope.operations")
    request = world.request(world.worker_chain(), read_action(data_sensitivity="public"))
    assert_refused(world, world.decide(request), "out_of_scope.sensitivities")


def test_a_revoked_ancestor(world: World) -> None:
    chain = world.worker_chain()
    revoke_key(world.store, world.orchestrator.key_id, at=world.now)
    assert_refused(world, world.decide(world.request(chain)), "ancestor_revoked")


def test_a_revoked_root(world: World) -> None:
    chain = world.worker_chain()
    revoke_key(world.store, world.root.key_id, at=world.now)
    assert_refused(world, world.decide(world.request(chain)), "ancestor_revoked")


def test_the_call_budget_is_spent_per_token(world: World) -> None:
    chain = world.worker_chain(NARROW.model_copy(update={"budget": 2}))
    for _ in range(2):
        assert_accepted(world, world.decide(world.request(chain)))
    world.policy.calls.clear()
    assert_refused(world, world.decide(world.request(chain)), "budget_exhausted")


def test_an_unverified_request_cannot_take_an_idempotency_key(world: World) -> None:
    action = read_action(idempotency_key="k1")
    request = world.request(world.worker_chain(), action)
    assert_refused(world, world.decide(with_envelope(request, proof="")), "missing_proof")
    assert_accepted(world, world.decide(request))


def test_a_preview_records_no_nonce(world: World) -> None:
    request = world.request(world.worker_chain())
    assert world.engine.preview(request).status.value == "allowed"
    assert_accepted(world, world.decide(request))


def test_hash_links_use_the_exact_token() -> None:
    assert token_hash("a.b.c") == hashlib.sha256(b"a.b.c").hexdigest()
    assert KeyRecord("k", "i", "pem").usable_at(0)


def test_an_integer_too_long_to_parse(world: World) -> None:
    request = world.request(world.worker_chain())
    header, claims, signature = segments(_proof(request.delegation))
    text = json.dumps(claims)[:-1] + ', "x": ' + "9" * 5000 + "}"
    forged = reassemble(header, text, signature)
    assert_refused(world, world.decide(with_envelope(request, proof=forged)), "malformed")


@pytest.mark.parametrize("target", ["consume", "delegate"])
def test_a_proof_for_another_operation(world: World, target: str) -> None:
    chain = world.worker_chain()
    action = read_action()
    body = chain.envelope(action, now=world.now).body
    proof = issue_proof(
        world.worker,
        leaf_token=chain.leaf,
        body=body,
        audience="gatekit",
        now=world.now,
        target=target,
    )
    request = with_envelope(world.request(chain, action), proof=proof)
    assert_refused(world, world.decide(request), "wrong_target")


def test_a_hop_signed_by_a_key_registered_to_someone_else(world: World) -> None:
    # The root names "orchestrator" as delegatee but binds the worker's key: the
    # worker then signs as "orchestrator", a name its key is not registered to.
    root_chain = DelegationChain.issue_root(
        world.root,
        delegatee="orchestrator",
        delegatee_key_id=world.worker.key_id,
        scope=BROAD,
        now=world.now,
    )
    posing = AgentKey("orchestrator", world.worker.private_key)
    child = issue_delegation(
        posing,
        delegatee="worker",
        delegatee_key_id=world.worker.key_id,
        scope=NARROW,
        audience="gatekit",
        ttl=600,
        parent=root_chain.leaf,
        now=world.now,
    )
    request = world.request(DelegationChain((root_chain.leaf, child), world.worker))
    assert_refused(world, world.decide(request), "issuer_mismatch")


def test_an_action_under_another_agents_name(world: World) -> None:
    request = world.request(world.worker_chain(), read_action(agent_id="orchestrator"))
    assert_refused(world, world.decide(request), "agent_mismatch")
