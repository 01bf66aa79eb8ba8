"""Defaults: ``Client()`` persists under ./.gatekit with nothing to start;
``LocalBackend()`` stays in memory for unit tests."""

from __future__ import annotations

import stat

import pytest

from gatekit import Client, ConfigurationError, LocalBackend, Settings, Status
from gatekit.audit import load_public_keys, verify
from gatekit.store import MemoryStore, SqliteStore


def test_the_default_client_keeps_state_under_dot_gatekit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GATEKIT_DATA_DIR", raising=False)
    monkeypatch.delenv("GATEKIT_DATABASE_URL", raising=False)
    with Client(agent_id="agent-1") as client:
        pending = client.decide(tool="pay", risk_level="high", idempotency_key="k")
    assert (tmp_path / ".gatekit" / "gatekit.db").exists()
    keys = list((tmp_path / ".gatekit" / "keys").glob("*.key"))
    assert len(keys) == 1
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600

    with Client(agent_id="agent-1") as restarted:
        again = restarted.decide(tool="pay", risk_level="high", idempotency_key="k")
    assert again.decision_id == pending.decision_id
    assert again.status is Status.PENDING_REVIEW
    store = SqliteStore.in_directory(tmp_path / ".gatekit")
    report = verify(store, load_public_keys([tmp_path / ".gatekit" / "keys"]))
    store.close()
    assert report.ok
    assert report.unsigned == {}  # close() signed the tail


def test_local_backend_without_arguments_is_in_memory():
    assert isinstance(LocalBackend().store, MemoryStore)


def test_a_database_url_that_is_not_postgresql_is_refused(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="mysql://nope")
    with pytest.raises(ConfigurationError, match="postgresql://"):
        LocalBackend.from_settings(settings)
