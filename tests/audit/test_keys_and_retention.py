"""Signing keys (0600, rotation), checkpoint cadence, retention, export — on both stores."""

from __future__ import annotations

import os
import stat
import time
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from gatekit import Action, ConfigurationError, DecisionRequest, Outcome
from gatekit.audit import AuditLog, KeyRing, load_public_keys, prune, verify
from gatekit.audit.export import JsonlSource
from gatekit.cli import app
from gatekit.store import MemoryStore

runner = CliRunner()


def _activity(backend, count):
    for n in range(count):
        request = DecisionRequest.for_action(
            Action(tool="read", risk_level="low", arguments={"n": n}, agent_id="a")
        )
        backend.report(backend.decide(request).decision_id, Outcome(status="success"))
        backend.engine.flush()  # each outcome in its own commit: a fixed layout


def test_keys_are_created_on_first_use_with_private_permissions(tmp_path):
    ring = KeyRing(tmp_path / "keys")
    signer = ring.signer()
    private = tmp_path / "keys" / f"{signer.key_id}.key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert ring.signer().key_id == signer.key_id  # reused, not regenerated
    assert list(ring.public_keys()) == [signer.key_id]


def test_checkpoints_are_signed_every_n_records_and_at_close(db, make_backend):
    backend = make_backend(checkpoint_every=4)
    _activity(backend, 5)  # 10 records
    assert [cp.seq for cp in backend.store.audit_checkpoints()] == [4, 8]
    backend.close()
    checkpoints = db.open().audit_checkpoints()
    assert [cp.seq for cp in checkpoints] == [4, 8, 10]
    assert {cp.key_id for cp in checkpoints} == {KeyRing(db.data_dir / "keys").signer().key_id}


def test_old_checkpoints_verify_after_key_rotation(db, make_backend):
    first = make_backend(checkpoint_every=4)
    _activity(first, 3)
    first.close()
    result = runner.invoke(app, ["audit", "rotate-key", "--data-dir", str(db.data_dir)])
    assert result.exit_code == 0, result.output
    second = make_backend(checkpoint_every=4)
    _activity(second, 3)
    second.close()
    keys = {cp.key_id for cp in db.open().audit_checkpoints()}
    assert len(keys) == 2
    ok = runner.invoke(app, ["audit", "verify", *db.cli_options])
    assert ok.exit_code == 0, ok.output
    # With only the new public key, the old checkpoints cannot be trusted.
    new_key = KeyRing(db.data_dir / "keys").signer().key_id
    only_new = runner.invoke(
        app,
        ["audit", "verify", *db.cli_options, "-k", str(db.data_dir / "keys" / f"{new_key}.pub")],
    )
    assert only_new.exit_code == 1
    assert "unknown key" in only_new.output


def test_several_writers_are_all_verified(db, make_backend):
    for writer in ("replica-a", "replica-b"):
        backend = make_backend(writer_id=writer)
        _activity(backend, 3)
        backend.close()
    report = verify(db.open(), load_public_keys([db.data_dir / "keys"]))
    assert report.ok
    assert report.chains == 2
    assert report.records == 12


def test_pruning_keeps_the_chain_verifiable(db, make_backend):
    backend = make_backend(checkpoint_every=4)
    _activity(backend, 6)  # 12 records, checkpoints at 4, 8, 12
    store = backend.store
    deleted = prune(store, datetime.now(UTC) + timedelta(seconds=1))
    assert deleted == 12
    _activity(backend, 1)
    backend.close()
    store = db.open()
    remaining = list(store.audit_records())
    assert [r.seq for r in remaining] == [13, 14]
    assert [cp.seq for cp in store.audit_checkpoints()] == [12, 14]
    keys = load_public_keys([db.data_dir / "keys"])
    assert verify(store, keys).ok
    # The kept checkpoint is the anchor: deleting past it is still caught.
    with store._write() as cur:
        cur.execute(store._q("DELETE FROM audit_records WHERE seq = ?"), (13,))
    report = verify(store, keys)
    assert not report.ok
    assert "missing" in report.problem.message


def test_prune_through_the_cli_only_cuts_at_checkpoints(db, make_backend):
    backend = make_backend(checkpoint_every=4)
    _activity(backend, 3)  # 6 records; checkpoint at 4, then 6 at close
    backend.close()
    result = runner.invoke(app, ["audit", "prune", *db.cli_options, "--older-than-days", "0"])
    assert result.exit_code == 0, result.output
    assert "pruned 6 record(s)" in result.output
    assert runner.invoke(app, ["audit", "verify", *db.cli_options]).exit_code == 0


def test_an_export_verifies_offline_and_its_edits_are_caught(db, make_backend, tmp_path):
    backend = make_backend(checkpoint_every=4)
    _activity(backend, 4)
    backend.close()
    exported = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["audit", "export", *db.cli_options, "-o", str(exported)])
    assert result.exit_code == 0, result.output
    keys = load_public_keys([db.data_dir / "keys"])
    assert verify(JsonlSource(exported), keys).records == 8
    lines = exported.read_text().splitlines()
    del lines[-3]  # drop one record
    exported.write_text("\n".join(lines) + "\n")
    check = runner.invoke(
        app, ["audit", "verify", "--input", str(exported), "-k", str(db.data_dir / "keys")]
    )
    assert check.exit_code == 1
    assert "record seq 7" in " ".join(check.output.split())


def test_a_quiet_writer_still_signs_within_the_interval(tmp_path):
    store = MemoryStore()
    log = AuditLog(store, writer_id="w", signer=KeyRing(tmp_path).signer(), checkpoint_interval=0.2)
    store.append_audit(log.event("note", None, {}, datetime.now(UTC)))
    log.committed()
    deadline = time.monotonic() + 10
    while not store.audit_checkpoints() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [cp.seq for cp in store.audit_checkpoints()] == [1]
    log.close()


def test_a_new_key_directory_is_private(tmp_path):
    KeyRing(tmp_path / "data" / "keys").signer()
    assert stat.S_IMODE((tmp_path / "data" / "keys").stat().st_mode) == 0o700


def test_a_key_directory_writable_by_others_is_refused(tmp_path):
    keys = tmp_path / "keys"
    KeyRing(keys).signer()
    os.chmod(keys, 0o777)
    for use in (KeyRing(keys).signer, KeyRing(keys).rotate, KeyRing(keys).public_keys):
        with pytest.raises(ConfigurationError, match="writable by other users") as caught:
            use()
        assert str(keys) in str(caught.value)
        assert "chmod go-w" in str(caught.value)
    os.chmod(keys, 0o775)  # group-writable is no better
    with pytest.raises(ConfigurationError, match="writable by other users"):
        KeyRing(keys).signer()
    os.chmod(keys, 0o755)  # readable is fine: only the .key files are secret
    assert KeyRing(keys).signer().key_id


def test_a_private_key_others_can_read_is_refused(tmp_path):
    signer = KeyRing(tmp_path).signer()
    key_file = tmp_path / f"{signer.key_id}.key"
    os.chmod(key_file, 0o644)
    with pytest.raises(ConfigurationError, match="accessible by other users") as caught:
        KeyRing(tmp_path).signer()
    assert f"chmod 600 {key_file}" in str(caught.value)


def test_a_missing_active_key_is_a_configuration_error(tmp_path):
    signer = KeyRing(tmp_path).signer()
    (tmp_path / f"{signer.key_id}.key").unlink()
    with pytest.raises(ConfigurationError, match=f"active audit key {signer.key_id} is missing"):
        KeyRing(tmp_path).signer()


def test_a_key_directory_that_cannot_be_created_is_a_configuration_error(tmp_path):
    (tmp_path / "plain-file").write_text("")
    with pytest.raises(ConfigurationError, match="cannot create the audit key directory"):
        KeyRing(tmp_path / "plain-file" / "keys").signer()
