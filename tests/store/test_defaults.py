"""Defaults: ``Client()`` and ``LocalBackend(…)`` persist under ./.gatekit with nothing
to start, whatever else is passed; an in-memory store is only ever an explicit choice."""

from __future__ import annotations

import stat

import pytest
from pydantic import SecretStr

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


def test_local_backend_is_durable_whatever_policy_is_given(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: allow\n")
    for backend in (LocalBackend(), LocalBackend(policy=str(policy)), LocalBackend(policy)):
        assert isinstance(backend.store, SqliteStore)
        backend.close()


def test_constructor_arguments_and_variables_are_one_set_of_settings(tmp_path):
    """Every documented setting is accepted by the client's constructor."""
    given = {
        "fail_mode": "closed",
        "dlp_mode": "mask",
        "agent_id": "agent-1",
        "data_dir": tmp_path / "state",
        "approval_timeout": 5.0,
        "approval_ttl": 60.0,
        "decision_timeout": 2.0,
        "policy": None,
        "database_url": None,
        "sqlite_synchronous": "full",
        "writer_id": "writer-a",
        "audit_checkpoint_records": 10,
        "audit_checkpoint_seconds": 5.0,
        "audit_witness": tmp_path / "witness-copy.json",
        "audit_retention_days": 30.0,
        "separation_of_duties": False,
        "session_secret": SecretStr("s" * 32),
        "delegation_audience": "gatekit-test",
        "delegation_max_depth": 3,
        "delegation_proof_max_age": 30.0,
        "delegation_clock_skew": 2.0,
        "delegation_required": True,
        "delegation_issuer_key": None,
        "server_url": None,  # set, the client would ask a server (tests/backends)
        "api_key": None,
    }
    assert set(given) == set(Settings.model_fields)
    with Client(**given) as client:
        for name, value in given.items():
            if value is not None:
                assert getattr(client.settings, name) == value, name
    assert (tmp_path / "state" / "gatekit.db").exists()


def test_an_unknown_setting_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="polcy"):
        Client(polcy="policy.yaml")


def test_an_in_memory_store_is_an_explicit_choice():
    backend = LocalBackend(store=MemoryStore())
    assert isinstance(backend.store, MemoryStore)


def test_a_database_url_that_is_not_postgresql_is_refused(tmp_path):
    settings = Settings(data_dir=tmp_path, database_url="mysql://nope")
    with pytest.raises(ConfigurationError, match="postgresql://"):
        LocalBackend.from_settings(settings)
