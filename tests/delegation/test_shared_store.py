"""Keys, revocations and nonces live in the store: every process on it agrees."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from gatekit.delegation import revoke_key
from gatekit.engine import Engine
from tests.conftest import Database
from tests.delegation.world import SpyPolicy, World, assert_accepted, assert_refused


def _second_engine(world: World, db: Database) -> tuple[Engine, SpyPolicy]:
    """Another process on the same database: its own connection, policy and clock."""
    policy = SpyPolicy()
    engine = Engine(policy, db.open(), clock=lambda: datetime.fromtimestamp(world.now, UTC))
    return engine, policy


def test_a_request_accepted_by_one_process_is_a_replay_for_another(db: Database) -> None:
    world = World(store=db.open())
    other, other_policy = _second_engine(world, db)
    request = world.request(world.worker_chain())
    assert_accepted(world, world.decide(request))
    replayed = other.decide(request)
    assert replayed.checks[0].detail == "replay"
    assert other_policy.calls == []


def test_two_processes_racing_with_one_request_let_one_through(db: Database) -> None:
    world = World(store=db.open())
    engines = [world.engine, *(_second_engine(world, db)[0] for _ in range(3))]
    request = world.request(world.worker_chain())
    barrier = threading.Barrier(len(engines))
    statuses: list[str] = []

    def send(engine: Engine) -> None:
        barrier.wait()
        statuses.append(engine.decide(request).status.value)

    threads = [threading.Thread(target=send, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == ["allowed", "blocked", "blocked", "blocked"]


def test_a_revocation_by_one_process_holds_in_another(db: Database) -> None:
    world = World(store=db.open())
    other, other_policy = _second_engine(world, db)
    revoke_key(other.store, world.orchestrator.key_id, at=world.now)
    assert_refused(world, world.decide(world.request(world.worker_chain())), "ancestor_revoked")
    record = world.store.agent_key(world.orchestrator.key_id)  # type: ignore[attr-defined]
    assert record.status == "revoked" and record.revoked_at == world.now
    assert other_policy.calls == []


def test_nonces_are_kept_until_their_proof_is_stale(db: Database) -> None:
    from gatekit.store import MemoryStore

    for store in (db.open(), MemoryStore()):
        assert store.use_nonce("k:a", expires_at=10.0, now=0.0)  # type: ignore[attr-defined]
        assert not store.use_nonce("k:a", expires_at=10.0, now=5.0)  # type: ignore[attr-defined]
        assert store.nonce_seen("k:a")  # type: ignore[attr-defined]
        assert store.use_nonce("k:b", expires_at=99.0, now=11.0)  # type: ignore[attr-defined]
        assert not store.nonce_seen("k:a")  # type: ignore[attr-defined]
