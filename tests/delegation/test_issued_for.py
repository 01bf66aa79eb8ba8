"""A hop a root key issued on behalf of its parent's delegatee (``for``), as the
server's ``POST /v1/delegations`` does: valid only from a registered root, naming
the parent's delegatee, whose key must still stand; every other rule as for any hop."""

from __future__ import annotations

import pytest

from gatekit.delegation import (
    AgentKey,
    DelegationChain,
    DelegationConfig,
    DelegationRefused,
    DelegationVerifier,
    issue_delegation,
    register_key,
    revoke_key,
)
from tests.delegation.world import (
    BROAD,
    NARROW,
    World,
    assert_accepted,
    assert_refused,
)


@pytest.fixture
def world() -> World:
    return World()


def _issued_for(
    world: World,
    *,
    signer: AgentKey | None = None,
    issued_for: str | None = "orchestrator",
    scope: object = NARROW,
    ttl: float = 600,
) -> DelegationChain:
    """root → orchestrator, then a child for the worker signed by ``signer`` (the
    root by default) rather than by the orchestrator."""
    parent = world.root_chain(BROAD)
    child = issue_delegation(
        signer or world.root,
        delegatee="worker",
        delegatee_key_id=world.worker.key_id,
        scope=scope,  # type: ignore[arg-type]
        audience="gatekit",
        ttl=ttl,
        parent=parent.leaf,
        now=world.now,
        issued_for=issued_for,
    )
    return DelegationChain((parent.leaf, child), world.worker)


def test_a_root_may_issue_a_child_for_the_parents_delegatee(world: World) -> None:
    decision = world.decide(world.request(_issued_for(world)))
    assert_accepted(world, decision)
    assert world.policy.calls[0].verified_delegation.depth == 2


def test_a_root_signed_hop_without_for_is_refused(world: World) -> None:
    chain = _issued_for(world, issued_for=None)
    assert_refused(world, world.decide(world.request(chain)), "wrong_signer")


def test_a_root_signed_hop_for_someone_else_is_refused(world: World) -> None:
    chain = _issued_for(world, issued_for="worker")
    assert_refused(world, world.decide(world.request(chain)), "issued_for_mismatch")


def test_a_key_that_is_not_a_root_cannot_issue_for_anyone(world: World) -> None:
    other = AgentKey.generate("bystander")
    register_key(world.store, other)  # registered, active, not a root
    chain = _issued_for(world, signer=other)
    assert_refused(world, world.decide(world.request(chain)), "wrong_signer")


def test_revoking_the_delegatee_it_was_issued_for_kills_the_child(world: World) -> None:
    chain = _issued_for(world)
    assert_accepted(world, world.decide(world.request(chain)))  # now cached
    revoke_key(world.store, world.orchestrator.key_id, at=world.now)
    world.policy.calls.clear()
    assert_refused(world, world.decide(world.request(chain)), "ancestor_revoked")
    cold = DelegationVerifier(world.store, DelegationConfig(chain_cache_size=0))
    with pytest.raises(DelegationRefused, match="ancestor_revoked"):
        cold.verify_chain(list(chain.tokens), world.now)


def test_a_root_issued_child_still_only_narrows(world: World) -> None:
    chain = _issued_for(world, scope=BROAD.model_copy(update={"budget": 1000}))
    assert_refused(world, world.decide(world.request(chain)), "scope_widened.budget")


def test_a_root_issued_child_cannot_outlive_its_parent(world: World) -> None:
    chain = _issued_for(world, ttl=7200)
    assert_refused(world, world.decide(world.request(chain)), "expiry_outlives_parent")
