"""A session holding a lock makes decisions fail closed, not hang: waits for locks
are bounded by the store, derived from ``decision_timeout``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gatekit import Action, BackendError, Client, DecisionRequest, LocalBackend, Settings
from gatekit.store import open_store

# A hang guard, not a timing assertion: without bounded waits these tests block
# for the old 30 s busy timeout (SQLite) or forever (PostgreSQL).
pytestmark = pytest.mark.timeout(25)


def _guarded_run(client: Client) -> list[int]:
    ran: list[int] = []
    with pytest.raises(BackendError), client.guard(tool="read", risk_level="low"):
        ran.append(1)
    return ran


# -- SQLite -------------------------------------------------------------------------


def test_sqlite_busy_timeout_comes_from_decision_timeout(tmp_path):
    store = open_store(Settings(data_dir=tmp_path, decision_timeout=2))
    try:
        with store._read() as cur:  # type: ignore[attr-defined]
            cur.execute("PRAGMA busy_timeout")
            assert cur.fetchone()[0] == 1500  # the lock wait: 3/4 of the decision timeout
    finally:
        store.close()


def test_a_held_sqlite_write_lock_fails_the_decision_closed(tmp_path: Path):
    backend = LocalBackend.from_settings(Settings(data_dir=tmp_path, decision_timeout=0.5))
    client = Client(backend, agent_id="agent-1")
    holder = sqlite3.connect(tmp_path / "gatekit.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
        assert _guarded_run(client) == []
        holder.execute("ROLLBACK")
        with client.guard(tool="read", risk_level="low") as decision:
            assert decision.allowed  # the store recovers once the lock is gone
    finally:
        holder.close()
        client.close()


# -- PostgreSQL -------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_session_timeouts_come_from_decision_timeout(postgres_url, tmp_path):
    store = open_store(Settings(data_dir=tmp_path, database_url=postgres_url, decision_timeout=2))
    try:
        with store._read() as cur:  # type: ignore[attr-defined]
            cur.execute("SHOW lock_timeout")
            assert cur.fetchone()[0] == "1500ms"
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "1800ms"
    finally:
        store.close()


@pytest.mark.postgres
def test_postgres_timeouts_are_optional(postgres_url):
    from gatekit.store.postgres import PostgresStore

    store = PostgresStore(postgres_url, lock_timeout=0.25)
    try:
        with store._read() as cur:
            cur.execute("SHOW lock_timeout")
            assert cur.fetchone()[0] == "250ms"
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "0"  # the server's default: no limit
    finally:
        store.close()


@pytest.mark.postgres
def test_a_held_audit_head_lock_fails_the_decision_closed(postgres_url, tmp_path):
    import psycopg

    settings = Settings(
        data_dir=tmp_path, database_url=postgres_url, decision_timeout=1, writer_id="w"
    )
    backend = LocalBackend.from_settings(settings)
    client = Client(backend, agent_id="agent-1")
    client.decide(tool="read", risk_level="low")  # the writer's chain head row exists now
    with psycopg.connect(postgres_url) as holder:
        # Another session holds the head row in an open transaction.
        holder.execute("SELECT seq FROM audit_heads WHERE writer_id = 'w' FOR UPDATE")
        assert _guarded_run(client) == []
        held = (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)
        with pytest.raises(held):  # the store raises rather than waiting on
            backend.decide(DecisionRequest.for_action(Action(tool="read", risk_level="low")))
        holder.rollback()
    with client.guard(tool="read", risk_level="low") as decision:
        assert decision.allowed
    client.close()


@pytest.mark.postgres
def test_a_slow_statement_is_cancelled(postgres_url):
    import psycopg

    from gatekit.store.postgres import PostgresStore

    store = PostgresStore(postgres_url, statement_timeout=0.2)
    try:
        with pytest.raises(psycopg.errors.QueryCanceled), store._write() as cur:
            cur.execute("SELECT pg_sleep(5)")
    finally:
        store.close()
