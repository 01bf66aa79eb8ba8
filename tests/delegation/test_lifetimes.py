"""How long a child made by ``DelegationChain.delegate`` lives: by default what its
parent has left (at most an hour); an explicit ttl past the parent fails at issue
time, never as a token every verification refuses."""

from __future__ import annotations

import pytest

from gatekit._exceptions import ValidationError
from gatekit.delegation import DelegationChain
from tests.delegation.world import NARROW, World, assert_accepted, segments


def _child(world: World, parent: DelegationChain, ttl: float | None = None) -> DelegationChain:
    return parent.delegate(
        delegatee="worker",
        delegatee_key_id=world.worker.key_id,
        scope=NARROW,
        ttl=ttl,
        now=world.now,
    ).held_by(world.worker)


def _expiry(token: str) -> int:
    return int(segments(token)[1]["exp"])


def test_a_child_issued_later_with_the_default_ttl_ends_with_its_parent() -> None:
    world = World()
    parent = world.root_chain(ttl=3600)
    world.now += 600  # the orchestrator delegates ten minutes after it got its token
    child = _child(world, parent)
    assert _expiry(child.leaf) == _expiry(parent.leaf) == int(world.now) + 3000
    assert_accepted(world, world.decide(world.request(child)))


def test_the_default_is_an_hour_under_a_long_lived_parent() -> None:
    world = World()
    parent = world.root_chain(ttl=86400)
    child = _child(world, parent)
    assert _expiry(child.leaf) == int(world.now) + 3600


def test_an_explicit_ttl_inside_the_parent_is_kept() -> None:
    world = World()
    child = _child(world, world.root_chain(ttl=3600), ttl=60)
    assert _expiry(child.leaf) == int(world.now) + 60
    assert_accepted(world, world.decide(world.request(child)))


def test_an_explicit_ttl_outliving_the_parent_fails_at_issue_time() -> None:
    world = World()
    parent = world.root_chain(ttl=3600)
    world.now += 600
    with pytest.raises(ValidationError, match="only 3000 s left") as raised:
        _child(world, parent, ttl=3600)
    assert raised.value.field == "ttl"


def test_an_expired_parent_delegates_nothing() -> None:
    world = World()
    parent = world.root_chain(ttl=60)
    world.now += 60
    with pytest.raises(ValidationError, match="parent token has expired"):
        _child(world, parent)


@pytest.mark.parametrize("ttl", [0, -5])
def test_a_ttl_must_be_positive(ttl: float) -> None:
    world = World()
    with pytest.raises(ValidationError, match="positive"):
        _child(world, world.root_chain(), ttl=ttl)


def test_a_ttl_under_a_second_is_a_whole_second_not_none() -> None:
    world = World()
    child = _child(world, world.root_chain(), ttl=0.5)
    assert _expiry(child.leaf) == int(world.now) + 1
