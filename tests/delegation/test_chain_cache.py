"""Verified chains are remembered by their tokens' hashes: a run pays the chain's
signatures once, while revocations, key windows and expiry still hold on every request."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from jwt.algorithms import OKPAlgorithm

from gatekit.delegation import (
    AgentKey,
    DelegationConfig,
    DelegationRefused,
    DelegationVerifier,
    register_key,
    revoke_key,
)
from gatekit.delegation.cache import ChainCache, chain_key
from tests.conftest import Database
from tests.delegation.test_shared_store import _second_engine
from tests.delegation.world import (
    BROAD,
    NARROW,
    World,
    assert_accepted,
    assert_refused,
    b64,
    read_action,
)


@pytest.fixture
def signatures_checked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every JWS whose signature is verified, in order (the real check still runs)."""
    seen: list[str] = []
    real = OKPAlgorithm.verify

    def counting(self: OKPAlgorithm, msg: bytes, key: Any, sig: bytes) -> bool:
        seen.append(f"{msg.decode()}.{b64(sig)}")
        return real(self, msg, key, sig)

    monkeypatch.setattr(OKPAlgorithm, "verify", counting)
    return seen


def test_a_chain_is_verified_once_then_only_each_proof(signatures_checked: list[str]) -> None:
    world = World()
    chain = world.worker_chain()
    for _ in range(3):
        assert_accepted(world, world.decide(world.request(chain)))
    tokens = [jws for jws in signatures_checked if jws in chain.tokens]
    assert sorted(tokens) == sorted(chain.tokens)  # each hop's signature: once in all
    assert len(signatures_checked) == 3 + len(chain.tokens)  # plus one proof per request


def test_a_revoked_ancestor_kills_a_cached_chain() -> None:
    world = World()
    chain = world.worker_chain()
    assert_accepted(world, world.decide(world.request(chain)))  # now cached
    revoke_key(world.store, world.orchestrator.key_id, at=world.now)
    world.policy.calls.clear()
    assert_refused(world, world.decide(world.request(chain)), "ancestor_revoked")
    assert_refused(world, world.decide(world.request(chain)), "ancestor_revoked")


def test_a_revoked_root_kills_a_cached_chain() -> None:
    world = World()
    chain = world.worker_chain()
    assert_accepted(world, world.decide(world.request(chain)))
    revoke_key(world.store, world.root.key_id, at=world.now)
    world.policy.calls.clear()
    assert_refused(world, world.decide(world.request(chain)), "ancestor_revoked")


def test_a_revocation_written_by_another_process_kills_a_cached_chain(db: Database) -> None:
    # The reason the cache asks the store each time: no message reaches this process.
    world = World(store=db.open())
    other, _ = _second_engine(world, db)
    chain = world.worker_chain()
    assert_accepted(world, world.decide(world.request(chain)))
    revoke_key(other.store, world.orchestrator.key_id, at=world.now)
    world.policy.calls.clear()
    assert_refused(world, world.decide(world.request(chain)), "ancestor_revoked")


def test_a_cached_chain_expires_with_its_shortest_lived_token() -> None:
    world = World()
    chain = world.worker_chain(ttl=60)  # the worker's hop ends first
    assert_accepted(world, world.decide(world.request(chain)))
    world.now += 60
    world.policy.calls.clear()
    assert_refused(world, world.decide(world.request(chain)), "token_expired")


def test_a_signers_key_past_its_window_stops_a_cached_chain() -> None:
    world = World()
    orchestrator = AgentKey.generate("orchestrator-2")
    register_key(world.store, orchestrator, not_after=world.now + 30)
    chain = (
        world.root_chain(BROAD, to=orchestrator)
        .delegate(
            delegatee="worker", delegatee_key_id=world.worker.key_id, scope=NARROW, now=world.now
        )
        .held_by(world.worker)
    )
    assert_accepted(world, world.decide(world.request(chain)))
    world.now += 30
    world.policy.calls.clear()
    assert_refused(world, world.decide(world.request(chain)), "key_inactive")


def test_a_hit_needs_the_exact_bytes_of_every_token() -> None:
    world = World()
    genuine = world.worker_chain()
    assert_accepted(world, world.decide(world.request(genuine)))
    # The same leaf under another (valid, registered) root token: its parent link breaks.
    other_root = world.root_chain(BROAD)
    spliced = replace(genuine, tokens=(other_root.leaf, genuine.leaf))
    world.policy.calls.clear()
    assert_refused(world, world.decide(world.request(spliced)), "chain_broken")


def test_scope_is_checked_on_every_request_of_a_cached_chain() -> None:
    world = World()
    chain = world.worker_chain()
    assert_accepted(world, world.decide(world.request(chain)))
    world.policy.calls.clear()
    outside = world.request(chain, read_action("/data/b/other.txt"))
    assert_refused(world, world.decide(outside), "out_of_scope.resources")


def test_the_cache_is_bounded_and_drops_the_least_recently_used() -> None:
    world = World()
    verifier = DelegationVerifier(world.store, DelegationConfig(chain_cache_size=2))
    chains = [world.worker_chain() for _ in range(3)]
    for chain in chains:
        verifier.verify(world.request(chain).delegation, (read_action(),), world.now)  # type: ignore[arg-type]
    assert len(verifier.chains) == 2
    assert verifier.chains.get(chain_key(chains[0].tokens), world.now) is None
    assert verifier.chains.get(chain_key(chains[2].tokens), world.now) is not None


def test_a_cache_of_size_zero_remembers_nothing(signatures_checked: list[str]) -> None:
    world = World(config=DelegationConfig(chain_cache_size=0))
    chain = world.worker_chain()
    for _ in range(2):
        assert_accepted(world, world.decide(world.request(chain)))
    assert len(signatures_checked) == 2 * (1 + len(chain.tokens))


def test_a_refused_chain_is_not_remembered() -> None:
    world = World()
    verifier = DelegationVerifier(world.store, world.config)
    revoke_key(world.store, world.orchestrator.key_id, at=world.now)
    chain = world.worker_chain()
    with pytest.raises(DelegationRefused):
        verifier.verify(world.request(chain).delegation, (read_action(),), world.now)  # type: ignore[arg-type]
    assert len(verifier.chains) == 0


def test_chain_keys_are_only_made_for_token_like_strings() -> None:
    assert chain_key(["a.b.c", "d.e.f"]) is not None
    assert chain_key(["a.b.c", 7]) is None
    assert chain_key(["é.b.c"]) is None
    assert chain_key(["x" * 9000]) is None
    with pytest.raises(ValueError):
        ChainCache(-1)
