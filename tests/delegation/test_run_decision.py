"""Under delegation the run-level decision of ``Gateway.run`` is a delegated request
too: signed by the worker's key for a run, its chain verified before policy, so a
run the chain does not cover never starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatekit import Client, Gateway
from gatekit._exceptions import Blocked
from gatekit._models import Check, CheckOutcome, DataSensitivity, OperationClass, RiskLevel, Status
from gatekit.backends import LocalBackend
from gatekit.delegation import (
    GENERIC_REASON,
    AgentKey,
    DelegationChain,
    DelegationScope,
    issue_proof,
    register_key,
    revoke_key,
)
from gatekit.delegation.tokens import RUN_TARGET, RUN_TOOL
from gatekit.store import MemoryStore
from tests.delegation.world import (
    NARROW,
    SpyPolicy,
    World,
    assert_refused,
    read_action,
    segments,
    with_envelope,
)


class Setup:
    """A root that lets "worker" read under /data/a, and a gateway for the worker."""

    def __init__(self, tmp_path: Path, scope: DelegationScope = NARROW) -> None:
        self.store, self.policy = MemoryStore(), SpyPolicy()
        self.root, self.worker = AgentKey.generate("root"), AgentKey.generate("worker")
        register_key(self.store, self.root, root=True)
        register_key(self.store, self.worker)
        self.chain = DelegationChain.issue_root(
            self.root, delegatee="worker", delegatee_key_id=self.worker.key_id, scope=scope
        ).held_by(self.worker)
        self.client = Client(LocalBackend(self.policy, self.store), data_dir=tmp_path)
        self.ran: list[str] = []

    def gateway(self, **options: object) -> Gateway:
        return Gateway(self.client, agent_id="worker", require_ready=False, **options)  # type: ignore[arg-type]

    def agent(self, task: str) -> str:
        self.ran.append(task)
        return "done"


def _delegation_check(checks: list[Check]) -> Check:
    return next(c for c in checks if c.name == "delegation")


def test_the_run_decision_carries_a_proof_for_a_run(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    result = setup.gateway().run(setup.agent, input="go", delegation=setup.chain)
    assert setup.ran == ["go"]
    check = _delegation_check(result.decision.checks)
    assert check.outcome is CheckOutcome.PASS
    run = setup.policy.calls[0]
    assert run.action.tool == RUN_TOOL
    assert run.verified_delegation.delegatee == "worker"
    assert run.delegation is not None
    _, claims, _ = segments(run.delegation.proof)
    assert claims["op"] == RUN_TARGET and claims["iss"] == "worker"
    stored = setup.store.decision_records(result.decision.decision_id)
    assert "verified: root root, depth 1" in stored[0].body


@pytest.mark.anyio
async def test_the_async_run_decision_carries_a_proof_too(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    gateway = Gateway(setup.client.as_async(), agent_id="worker", require_ready=False)
    result = await gateway.arun(setup.agent, input="go", delegation=setup.chain)
    assert _delegation_check(result.decision.checks).outcome is CheckOutcome.PASS
    assert segments(setup.policy.calls[0].delegation.proof)[1]["op"] == RUN_TARGET  # type: ignore[union-attr]


def test_a_client_holding_a_delegation_signs_its_runs(tmp_path: Path) -> None:
    # The chain does not name `agent.run` among its tools, and need not.
    setup = Setup(tmp_path)
    client = Client(
        LocalBackend(setup.policy, setup.store), delegation=setup.chain, data_dir=tmp_path
    )
    gateway = Gateway(client, agent_id="worker", require_ready=False)
    result = gateway.run(lambda task: client.decide(read_action()).status, input="go")
    assert result.output is Status.ALLOWED
    assert _delegation_check(result.decision.checks).outcome is CheckOutcome.PASS


def test_a_revoked_ancestor_refuses_the_run_and_the_agent_never_starts(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    revoke_key(setup.store, setup.root.key_id)
    with pytest.raises(Blocked) as refused:
        setup.gateway().run(setup.agent, input="go", delegation=setup.chain)
    assert setup.ran == []
    assert refused.value.decision.reason == GENERIC_REASON
    assert _delegation_check(refused.value.decision.checks).detail == "ancestor_revoked"
    assert setup.policy.calls == []
    stored = setup.store.decision_records(refused.value.decision.decision_id)
    assert "ancestor_revoked" in stored[0].body


def test_a_run_riskier_than_the_chain_allows_never_starts(tmp_path: Path) -> None:
    setup = Setup(tmp_path)  # NARROW: max_risk low
    with pytest.raises(Blocked) as refused:
        setup.gateway(run_risk_level="medium").run(setup.agent, input="go", delegation=setup.chain)
    assert setup.ran == []
    assert _delegation_check(refused.value.decision.checks).detail == "out_of_scope.max_risk"


def test_a_run_under_another_agents_name_never_starts(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    gateway = Gateway(setup.client, agent_id="someone-else", require_ready=False)
    with pytest.raises(Blocked) as refused:
        gateway.run(setup.agent, input="go", delegation=setup.chain)
    assert setup.ran == []
    assert _delegation_check(refused.value.decision.checks).detail == "agent_mismatch"


def test_the_run_spends_none_of_the_call_budget(tmp_path: Path) -> None:
    setup = Setup(tmp_path, NARROW.model_copy(update={"budget": 1}))
    client = setup.client

    def agent(task: str) -> list[str]:
        return [client.decide(read_action()).status.value for _ in range(2)]

    result = setup.gateway().run(agent, input="go", delegation=setup.chain)
    assert result.output == ["allowed", "blocked"]  # the one call the budget allows


def test_a_run_proof_does_not_cover_a_tool_call() -> None:
    world = World()
    chain = world.worker_chain()
    action = read_action()
    body = chain.envelope(action, now=world.now).body
    proof = issue_proof(
        world.worker,
        leaf_token=chain.leaf,
        body=body,
        audience="gatekit",
        now=world.now,
        target=RUN_TARGET,
    )
    request = with_envelope(world.request(chain, action), proof=proof)
    assert_refused(world, world.decide(request), "wrong_target")


def test_a_tool_call_named_like_the_run_is_held_to_the_whole_scope() -> None:
    world = World()
    action = read_action(
        tool=RUN_TOOL,
        operation_class=OperationClass.EXECUTE,
        data_sensitivity=DataSensitivity.INTERNAL,
        risk_level=RiskLevel.LOW,
    )
    assert_refused(
        world, world.decide(world.request(world.worker_chain(), action)), "out_of_scope.operations"
    )
