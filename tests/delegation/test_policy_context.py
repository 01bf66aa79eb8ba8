"""Policy rules can match on the verified delegation (CEL ``delegation.*``)."""

from __future__ import annotations

from gatekit import DecisionRequest
from gatekit._models import Status
from gatekit.engine import Engine
from gatekit.policy import parse_policy
from tests.delegation.world import NARROW, World, read_action

POLICY = """
default: allow
rules:
  - id: too-deep
    when: delegation.depth > 1
    verdict: block
    reason: only direct delegations from the root
  - id: only-root-ops
    when: delegation.depth > 0 && delegation.root != "root"
    verdict: block
    reason: unknown root
  - id: worker-reads
    when: delegation.delegatee == "worker" && tool == "fs.read"
    verdict: allow
    reason: the worker may read
"""


def _world() -> World:
    world = World()
    world.engine = Engine(parse_policy(POLICY), world.store, clock=world.engine._now)
    return world


def test_rules_see_root_delegatee_and_depth() -> None:
    world = _world()
    two_hops = world.decide(world.request(world.worker_chain()))
    assert two_hops.status is Status.BLOCKED
    assert two_hops.rule_ids == ["too-deep"]
    worker = world.orchestrator  # any registered agent, one hop from the root
    direct = world.root_chain(NARROW, to=worker)
    decision = world.decide(world.request(direct, read_action(agent_id="orchestrator")))
    assert decision.status is Status.ALLOWED
    assert any(c.name == "delegation" and c.outcome.value == "pass" for c in decision.checks)


def test_a_request_without_delegation_reads_as_depth_zero() -> None:
    world = _world()
    decision = world.decide(DecisionRequest.for_action(read_action()))
    assert decision.status is Status.ALLOWED
    assert "worker-reads" not in decision.rule_ids  # no delegatee: the rule does not match
