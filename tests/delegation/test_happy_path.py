"""A delegated request verifies end to end: engine, Client and Gateway."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gatekit import Client, Gateway
from gatekit._exceptions import Blocked, ConfigurationError
from gatekit._models import CheckOutcome, Status
from gatekit.backends import LocalBackend
from gatekit.delegation import AgentKey, DelegationChain, register_key, revoke_key
from gatekit.store import MemoryStore
from tests.delegation.world import BROAD, NARROW, SpyPolicy, World, assert_accepted, read_action


def test_a_two_hop_chain_is_verified_before_policy() -> None:
    world = World()
    decision = world.decide(world.request(world.worker_chain()))
    assert_accepted(world, decision)
    check = next(c for c in decision.checks if c.name == "delegation")
    assert check.detail == "verified: root root, depth 2"
    assert world.policy.calls[0].verified_delegation.delegatee == "worker"


def test_a_root_token_alone_is_a_chain() -> None:
    world = World()
    decision = world.decide(world.request(world.root_chain(), read_action(agent_id="orchestrator")))
    assert_accepted(world, decision)


def test_a_request_without_delegation_is_judged_as_before() -> None:
    world = World()
    from gatekit import DecisionRequest

    action = read_action()
    decision = world.decide(DecisionRequest.for_action(action))
    assert decision.status is Status.ALLOWED
    assert all(c.name != "delegation" for c in decision.checks)


def test_requests_without_delegation_are_refused_when_it_is_required() -> None:
    from gatekit import DecisionRequest
    from gatekit.delegation import DelegationConfig

    world = World(config=DelegationConfig(required=True))
    decision = world.decide(DecisionRequest.for_action(read_action()))
    assert decision.status is Status.BLOCKED
    assert decision.checks[0].detail == "missing_delegation"
    assert world.policy.calls == []


def _client_world(tmp_path: Path) -> tuple[MemoryStore, SpyPolicy, AgentKey, DelegationChain]:
    store, policy = MemoryStore(), SpyPolicy()
    root, worker = AgentKey.generate("root"), AgentKey.generate("worker")
    register_key(store, root, root=True)
    register_key(store, worker)
    chain = DelegationChain.issue_root(
        root, delegatee="worker", delegatee_key_id=worker.key_id, scope=NARROW
    )
    return store, policy, worker, chain


def test_a_client_signs_every_request_it_prepares(tmp_path: Path) -> None:
    store, policy, worker, chain = _client_world(tmp_path)
    backend = LocalBackend(policy, store)
    client = Client(backend, delegation=chain, key=worker, data_dir=tmp_path)
    for _ in range(3):  # a fresh proof (nonce) each time: no replay
        decision = client.decide(read_action())
        assert decision.status is Status.ALLOWED
        assert any(
            c.name == "delegation" and c.outcome is CheckOutcome.PASS for c in decision.checks
        )
    outside = client.decide(read_action("/etc/passwd"))
    assert outside.status is Status.BLOCKED
    assert outside.checks[0].detail == "out_of_scope.resources"
    assert len(policy.calls) == 3


def test_a_client_guard_runs_the_body_only_inside_the_scope(tmp_path: Path) -> None:
    store, policy, worker, chain = _client_world(tmp_path)
    client = Client(
        LocalBackend(policy, store), delegation=chain.held_by(worker), data_dir=tmp_path
    )
    ran = []
    with client.guard(read_action()):
        ran.append(1)
    with pytest.raises(Blocked), client.guard(read_action(tool="fs.write")):
        ran.append(2)
    assert ran == [1]


def test_a_client_needs_the_delegatees_key(tmp_path: Path) -> None:
    _, _, _, chain = _client_world(tmp_path)
    with pytest.raises(ConfigurationError):
        Client(LocalBackend(SpyPolicy(), MemoryStore()), delegation=chain, data_dir=tmp_path)


def test_the_gateway_carries_the_delegation_into_every_gated_call(tmp_path: Path) -> None:
    store, policy, worker, chain = _client_world(tmp_path)
    client = Client(LocalBackend(policy, store), data_dir=tmp_path)
    gateway = Gateway(client, agent_id="worker", require_ready=False)

    @client.intercept(
        tool="fs.read",
        risk_level="low",
        operation_class="read",
        data_sensitivity="internal",
        capture_arguments=True,
    )
    def read(path: str) -> str:
        return f"contents of {path}"

    def agent(task: str) -> list[str]:
        out = [read("/data/a/one")]
        try:
            read("/data/b/two")
        except Blocked as blocked:
            out.append(blocked.decision.checks[0].detail)
        return out

    result = gateway.run(agent, input="go", delegation=chain.held_by(worker))
    assert result.output == ["contents of /data/a/one", "out_of_scope.resources"]
    assert result.summary.allowed == 1  # the read inside the scope
    assert result.summary.blocked == 1


def test_revoking_a_key_stops_its_chain_at_once(tmp_path: Path) -> None:
    store, policy, worker, chain = _client_world(tmp_path)
    client = Client(LocalBackend(policy, store), delegation=chain, key=worker, data_dir=tmp_path)
    assert client.decide(read_action()).status is Status.ALLOWED
    revoke_key(store, chain_root_key_id(chain), at=time.time())
    decision = client.decide(read_action())
    assert decision.checks[0].detail == "ancestor_revoked"


def chain_root_key_id(chain: DelegationChain) -> str:
    from tests.delegation.world import segments

    return str(segments(chain.tokens[0])[0]["kid"])


def test_the_registry_lives_in_sqlite_too(tmp_path: Path) -> None:
    from gatekit.store import SqliteStore

    world = World(store=SqliteStore(tmp_path / "g.db"))
    assert_accepted(world, world.decide(world.request(world.worker_chain())))
    assert world.store.agent_key(world.worker.key_id).identity == "worker"  # type: ignore[attr-defined]
    assert BROAD.claims()["budget"] == 100


def test_a_run_delegation_needs_the_delegatees_key(tmp_path: Path) -> None:
    store, policy, _, chain = _client_world(tmp_path)
    gateway = Gateway(Client(LocalBackend(policy, store), data_dir=tmp_path), agent_id="worker")
    with pytest.raises(ConfigurationError):
        gateway.run(lambda task: task, input="go", delegation=chain)


@pytest.mark.anyio
async def test_the_async_gateway_carries_the_delegation_too(tmp_path: Path) -> None:
    store, policy, worker, chain = _client_world(tmp_path)
    client = Client(LocalBackend(policy, store), data_dir=tmp_path).as_async()
    gateway = Gateway(client, agent_id="worker", require_ready=False)

    async def agent(task: str) -> str:
        decision = await client.decide(read_action())
        return decision.checks[0].detail

    result = await gateway.arun(agent, input="go", delegation=chain.held_by(worker))
    assert result.output == "verified: root root, depth 1"


def test_a_prepared_request_decided_twice_is_signed_afresh_each_time(tmp_path: Path) -> None:
    store, policy, worker, chain = _client_world(tmp_path)
    client = Client(LocalBackend(policy, store), delegation=chain, key=worker, data_dir=tmp_path)
    request = client.prepare(read_action())
    assert client.preview(request).status is Status.ALLOWED
    first, second = client.decide(request), client.decide(request)
    assert (first.status, second.status) == (Status.ALLOWED, Status.ALLOWED)
    assert len(policy.calls) == 3
    assert policy.calls[1].prepared_by_client  # the unmasked action went along to policy


def test_the_proof_signs_the_masked_action_that_is_sent(tmp_path: Path) -> None:
    store, policy, worker, chain = _client_world(tmp_path)
    client = Client(LocalBackend(policy, store), delegation=chain, key=worker, data_dir=tmp_path)
    secret = read_action(arguments={"path": "/data/a/x", "token": "AKIAIOSFODNN7EXAMPLE"})
    decision = client.decide(secret)
    assert decision.status is Status.ALLOWED, decision.checks
    sent = store.get_action(decision.decision_id)
    assert sent is not None and "AKIAIOSFODNN7EXAMPLE" not in sent.model_dump_json()
