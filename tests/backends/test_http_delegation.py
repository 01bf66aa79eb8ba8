"""A request made under delegation works end to end through the server: the
Client signs it, HttpBackend sends it as signed (chain, proof and the exact body
bytes the proof covers), and the server's engine verifies it before policy."""

from __future__ import annotations

import uuid

import anyio
import pytest

from gatekit import AsyncClient, Blocked, Client, Gateway, Status
from gatekit.delegation import AgentKey, DelegationChain, register_key
from tests.backends.live_server import LiveServer
from tests.delegation.world import NARROW, read_action


@pytest.fixture
def worker_chain(live_server: LiveServer) -> DelegationChain:
    # Fresh identities per test: the server's nonces and budgets are per key.
    suffix = uuid.uuid4().hex[:8]
    root, worker = AgentKey.generate(f"root-{suffix}"), AgentKey.generate("worker")
    store = live_server.store()
    try:
        register_key(store, root, root=True)
        register_key(store, worker)
    finally:
        store.close()
    chain = DelegationChain.issue_root(
        root, delegatee="worker", delegatee_key_id=worker.key_id, scope=NARROW
    )
    return chain.held_by(worker)


def test_a_delegated_request_is_verified_by_the_server(
    live_server: LiveServer, worker_chain: DelegationChain
) -> None:
    client = Client(live_server.backend(), delegation=worker_chain)
    for _ in range(2):  # a fresh proof each time: never a replay
        decision = client.decide(read_action())
        assert decision.status is Status.ALLOWED
        (check,) = [c for c in decision.checks if c.name == "delegation"]
        assert check.outcome.value == "pass"
        assert check.detail.startswith("verified: root root-")

    outside = client.decide(read_action("/etc/passwd"))
    assert outside.status is Status.BLOCKED
    assert outside.checks[0].detail == "out_of_scope.resources"


def test_guard_runs_a_delegated_call_and_refuses_one_outside_the_scope(
    live_server: LiveServer, worker_chain: DelegationChain
) -> None:
    client = Client(live_server.backend(), delegation=worker_chain)
    ran: list[str] = []
    with client.guard(read_action()):
        ran.append("inside")
    with pytest.raises(Blocked), client.guard(read_action("/data/b/secret.txt")):
        ran.append("outside")
    assert ran == ["inside"]


def test_a_gateway_run_carries_the_delegation_through_the_server(
    live_server: LiveServer, worker_chain: DelegationChain
) -> None:
    client = Client(live_server.backend())  # no delegation of its own: the run's is used
    ran: list[str] = []

    @client.intercept(
        tool="fs.read",
        risk_level="low",
        operation_class="read",
        data_sensitivity="internal",
        capture_arguments=True,
    )
    def read(path: str) -> str:
        ran.append(path)
        return "contents"

    def agent(paths: list[str]) -> list[str]:
        results = []
        for path in paths:
            try:
                results.append(read(path))
            except Blocked as refused:
                results.append(f"refused: {refused.decision.checks[0].detail}")
        return results

    gateway = Gateway(client, agent_id="worker")
    result = gateway.run(agent, input=["/data/a/x.txt", "/etc/shadow"], delegation=worker_chain)
    assert result.output == ["contents", "refused: out_of_scope.resources"]
    assert ran == ["/data/a/x.txt"]


def test_the_async_client_signs_through_the_server(
    live_server: LiveServer, worker_chain: DelegationChain
) -> None:
    backend = live_server.backend()
    client = AsyncClient(backend, delegation=worker_chain)

    async def scenario() -> list[Status]:
        statuses = [(await client.decide(read_action())).status for _ in range(2)]
        await backend.aclose()
        return statuses

    assert anyio.run(scenario) == [Status.ALLOWED, Status.ALLOWED]
