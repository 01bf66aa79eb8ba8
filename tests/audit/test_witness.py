"""The audit witness: a log cut back to an earlier checkpoint, a deleted writer, a
rewritten chain or a restored older database is caught, though each agrees with itself."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from gatekit import Action, BackendError, ConfigurationError, DecisionRequest, Outcome, Status
from gatekit._canonical import canonical_json
from gatekit.audit import KeyRing, Signer, read_witness, verify
from gatekit.audit.witness import WITNESS_FILE, Witness
from gatekit.cli import app
from gatekit.store import MemoryStore
from tests.audit.tampering import (
    activity,
    audit_cli,
    closed_log,
    engine,
    record_hash,
    rewrite_and_resign,
    sql,
    truncate,
    verify_cli,
)
from tests.conftest import Database

# -- what the witness holds ----------------------------------------------------------


def test_the_witness_holds_the_final_checkpoint_of_every_writer_privately(db):
    closed_log(db, 24, "w1")
    closed_log(db, 6, "w2")
    path = db.data_dir / WITNESS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    witness = read_witness(path)
    assert {w: e.checkpoint.seq for w, e in witness.writers.items()} == {"w1": 24, "w2": 6}
    assert all(entry.closed_cleanly for entry in witness.writers.values())
    assert witness.writers["w1"].checkpoint.hash == record_hash(db, 24)


def test_a_copy_goes_to_the_configured_witness_path_too(db, tmp_path):
    elsewhere = tmp_path / "mounted-elsewhere" / "witness.json"
    backend = engine(db, audit_witness=elsewhere)
    activity(backend, 3)
    backend.close()
    copy = read_witness(elsewhere)
    assert copy.writers["w1"].checkpoint.seq == 6
    assert copy.writers == read_witness(db.data_dir / WITNESS_FILE).writers


def test_an_untouched_witnessed_log_verifies_strictly(db):
    closed_log(db)
    code, output = verify_cli(db, "--strict")
    assert code == 0, output
    assert "OK 24 records in 1 chain(s), 5 signed checkpoint(s), 1 witness(es)" in output
    assert "WARNING" not in output


# -- 1. truncation and deleted writers --------------------------------------------------


def test_truncation_back_to_an_earlier_checkpoint_is_caught(db):
    closed_log(db)
    truncate(db, keep=20)  # 20 is a checkpoint: the database agrees with itself
    code, output = verify_cli(db)
    assert code == 1
    assert "writer 'w1', record seq 21: records missing after seq 20" in output
    assert f"{WITNESS_FILE} holds its signed checkpoint at seq 24" in output


def test_truncation_between_checkpoints_is_caught(db):
    closed_log(db)
    truncate(db, keep=22)
    code, output = verify_cli(db)
    assert code == 1
    assert "records missing after seq 22" in output


def test_a_deleted_writer_is_caught(db):
    closed_log(db, 6, "w1")
    closed_log(db, 6, "w2")
    for table in ("audit_records", "audit_checkpoints", "audit_heads"):
        sql(db, f"DELETE FROM {table} WHERE writer_id = 'w2'")
    code, output = verify_cli(db)
    assert code == 1
    assert "writer 'w2': the whole chain is missing (writer deleted)" in output
    assert "checkpoint at seq 6" in output


def test_a_chain_rewritten_and_signed_again_is_caught_by_the_witness(db):
    """Whoever holds the signing key can re-sign a rewritten chain; the witness
    still holds the checkpoint signed before."""
    closed_log(db)
    rewrite_and_resign(db, 3, KeyRing(db.data_dir / "keys").signer())
    code, output = verify_cli(db)
    assert code == 1
    assert "writer 'w1', record seq 24: differs from the signed checkpoint" in output
    assert "rewritten" in output


def test_exported_checkpoints_kept_elsewhere_catch_a_truncation(db, tmp_path):
    closed_log(db)
    copy = tmp_path / "offsite" / "checkpoints.json"
    copy.parent.mkdir()
    code, output = audit_cli("checkpoints", *db.cli_options, "--export", str(copy))
    assert code == 0, output
    truncate(db, keep=20)
    (db.data_dir / WITNESS_FILE).unlink()  # the local witness went with the database

    code, output = verify_cli(db)
    assert code == 0, output  # nothing left to compare with: only a warning …
    assert "WARNING no audit witness to compare with" in output
    code, output = verify_cli(db, "--strict")
    assert code == 1  # … which --strict does not accept
    assert "FAILED no audit witness" in output
    code, output = verify_cli(db, "--witness", str(copy))
    assert code == 1
    assert "records missing after seq 20" in output


def test_checkpoints_lists_the_latest_per_writer(db):
    closed_log(db, 24, "w1")
    closed_log(db, 6, "w2")
    code, output = audit_cli("checkpoints", *db.cli_options)
    assert code == 0, output
    assert "w1 seq 24" in output
    assert "w2 seq 6" in output


def test_verify_api_takes_witnesses(db):
    closed_log(db)
    keys = KeyRing(db.data_dir / "keys").public_keys()
    witness = read_witness(db.data_dir / WITNESS_FILE)
    store = db.open()
    assert verify(store, keys, witnesses=[witness], strict=True).ok
    truncate(db, keep=20)
    report = verify(store, keys, witnesses=[witness])
    assert not report.ok
    assert (report.problem.writer_id, report.problem.seq) == ("w1", 21)


def test_retention_keeps_a_witnessed_log_verifiable_and_startable(db):
    closed_log(db)
    code, output = audit_cli("prune", *db.cli_options, "--older-than-days", "0")
    assert code == 0, output
    assert "pruned 24 record(s)" in output
    code, output = verify_cli(db, "--strict")
    assert code == 0, output
    backend = engine(db)  # the witnessed seq 24 is now only the anchor checkpoint
    activity(backend, 1)
    backend.close()
    code, output = verify_cli(db, "--strict")
    assert code == 0, output
    assert "OK 2 records" in output


def test_a_witness_that_cannot_be_written_is_a_configuration_error(db, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(ConfigurationError, match="cannot write the audit witness"):
        engine(db, audit_witness=blocked / "witness.json")
    assert read_witness(db.data_dir / WITNESS_FILE).writers["w1"].sessions == {}


# -- 2. a database older than its witness is refused --------------------------------------


def _high_risk_request():
    action = Action(
        tool="transfer",
        risk_level="high",
        operation_class="financial",
        arguments={"to": "ACME", "amount": 250},
        agent_id="payments-agent",
    )
    return DecisionRequest.for_action(action)


def test_a_restored_older_database_is_refused_so_a_used_approval_cannot_run_again(tmp_path):
    db = Database("sqlite", tmp_path / "data")
    request = _high_risk_request()
    first = engine(db)
    pending = first.decide(request)
    assert pending.status is Status.PENDING_REVIEW
    first.approve(pending.approval_id, reviewer="alice")
    first.close()
    backup = tmp_path / "gatekit.db.backup"
    shutil.copy2(db.data_dir / "gatekit.db", backup)  # approved, not yet used

    second = engine(db)
    second.consume(pending.decision_id, request)  # used …
    second.report(pending.decision_id, Outcome(status="success"))
    second.close()
    for leftover in ("gatekit.db-wal", "gatekit.db-shm"):
        (db.data_dir / leftover).unlink(missing_ok=True)
    shutil.copy2(backup, db.data_dir / "gatekit.db")  # … and made unused again

    with pytest.raises(BackendError) as refused:
        engine(db)
    message = str(refused.value)
    assert f"{db.data_dir / 'gatekit.db'} is older than its audit witness" in message
    assert str(db.data_dir / WITNESS_FILE) in message
    assert "writer 'w1' ends at seq 2" in message
    assert "checkpoint at seq 4" in message
    assert "Restore the newest copy of the database" in message
    assert f"move {db.data_dir / WITNESS_FILE} away" in message

    # Moving the witness away is the deliberate way to accept the rollback.
    (db.data_dir / WITNESS_FILE).rename(tmp_path / "witness-before-rollback.json")
    engine(db).close()


def test_a_truncated_database_is_refused_at_start(db):
    closed_log(db)
    truncate(db, keep=20)
    with pytest.raises(BackendError, match="is older than its audit witness"):
        engine(db)
    # The CLI commands that open the engine refuse too, in one line.
    result = CliRunner().invoke(app, ["approvals", "list", *db.cli_options])
    assert result.exit_code == 1
    assert "older than its audit witness" in " ".join(result.output.split())


def test_a_database_diverging_from_its_witness_is_refused_at_start(db):
    closed_log(db)
    rewrite_and_resign(db, 3, KeyRing(db.data_dir / "keys").signer())
    with pytest.raises(BackendError, match="does not match its audit witness"):
        engine(db, writer_id="someone-else")


def test_a_database_ahead_of_its_witness_starts(db):
    closed_log(db)
    backend = engine(db, writer_id="w2")
    activity(backend, 1)
    backend.close()


def test_a_witness_that_cannot_be_read_is_a_configuration_error(db):
    closed_log(db)
    (db.data_dir / WITNESS_FILE).write_text("{not json")
    with pytest.raises(ConfigurationError, match="cannot read the audit witness"):
        engine(db)


# -- 4. the unsigned tail, crashes and clean closes ------------------------------------------

CRASHING_AGENT = textwrap.dedent(
    """
    import os
    from gatekit import Action, DecisionRequest, LocalBackend, Outcome

    backend = LocalBackend()
    for n in range(3):
        request = DecisionRequest.for_action(
            Action(tool="read", risk_level="low", arguments={"n": n}, agent_id="a")
        )
        backend.report(backend.decide(request).decision_id, Outcome(status="success"))
        backend.engine.flush()  # outcomes committed now: 6 records, as the test expects
    os._exit(0)  # dies without close(): no final checkpoint
    """
)


def _crash(db):
    """6 records by a process that dies: a checkpoint at 5, record 6 unsigned."""
    env = {
        **os.environ,
        **db.env,
        "GATEKIT_WRITER_ID": "w1",
        "GATEKIT_AUDIT_CHECKPOINT_RECORDS": "5",
    }
    subprocess.run([sys.executable, "-c", CRASHING_AGENT], env=env, check=True, timeout=120)


def test_a_crash_leaves_an_unsigned_tail_that_strict_refuses(db):
    _crash(db)
    code, output = verify_cli(db)
    assert code == 0, output
    assert (
        "WARNING writer 'w1': 1 record(s) after the last checkpoint (seq 5) are not signed: "
        "still running, or ended without a final checkpoint (crash?)"
    ) in output
    code, output = verify_cli(db, "--strict")
    assert code == 1
    assert "FAILED writer 'w1': 1 record(s) after the last checkpoint (seq 5)" in output
    assert "(crash?)" in output


def test_a_crash_tail_deleted_with_its_head_is_still_no_clean_close(db):
    _crash(db)
    truncate(db, keep=5)  # the unsigned record goes, the head is rewritten to match
    code, output = verify_cli(db)
    assert code == 0, output
    code, output = verify_cli(db, "--strict")
    assert code == 1
    assert "writer 'w1': ended without a final checkpoint (crash?)" in output
    assert "nothing vouches for records after seq 5" in output
    assert "records missing" not in output  # that is what a truncation says


def test_the_next_clean_close_signs_a_crashed_tail(db):
    _crash(db)
    engine(db).close()  # the crashed process is gone: its session ends with this checkpoint
    code, output = verify_cli(db, "--strict")
    assert code == 0, output
    assert read_witness(db.data_dir / WITNESS_FILE).writers["w1"].closed_cleanly


def test_a_running_writer_is_not_yet_proven_complete(db):
    backend = engine(db)
    activity(backend, 3)  # checkpoint at 5, record 6 unsigned
    code, output = verify_cli(db, "--strict")
    assert code == 1
    assert "still running, or ended without a final checkpoint" in output
    backend.close()
    assert verify_cli(db, "--strict")[0] == 0


def test_records_forged_after_a_clean_close_are_reported(db):
    closed_log(db, 6)
    body = json.loads(sql(db, "SELECT body FROM audit_records WHERE seq = 6")[0][0])
    body.update(seq=7, prev=record_hash(db, 6), id="rec_forged")
    forged = canonical_json(body)
    forged_hash = hashlib.sha256(forged).hexdigest()
    sql(
        db,
        "INSERT INTO audit_records (writer_id, seq, record_id, at, kind, decision_id, body, hash)"
        " VALUES ('w1', 7, 'rec_forged', ?, ?, ?, ?, ?)",
        (body["at"], body["kind"], body["decision_id"], forged.decode(), forged_hash),
    )
    sql(db, "UPDATE audit_heads SET seq = 7, hash = ? WHERE writer_id = 'w1'", (forged_hash,))
    code, output = verify_cli(db)
    assert code == 0, output
    assert (
        "WARNING writer 'w1': 1 record(s) after the last checkpoint (seq 6) are not signed, "
        "yet the writer closed cleanly at seq 6"
    ) in output
    assert "(forged?)" in output
    code, output = verify_cli(db, "--strict")
    assert code == 1
    assert "FAILED writer 'w1': 1 record(s)" in output


def test_a_writer_no_witness_knows_is_not_proven_complete(db, make_backend):
    closed_log(db, 6, "w1")
    unwitnessed = make_backend(writer_id="w2")  # built by hand, without a witness
    activity(unwitnessed, 1)
    unwitnessed.close()
    assert verify_cli(db)[0] == 0
    code, output = verify_cli(db, "--strict")
    assert code == 1
    assert "writer 'w2': no audit witness knows this writer" in output


def test_a_witness_checkpoint_from_an_untrusted_key_fails(db):
    closed_log(db)
    path = db.data_dir / WITNESS_FILE
    document = json.loads(path.read_text())
    forger = Signer(Ed25519PrivateKey.generate())
    checkpoint = document["writers"]["w1"]["checkpoint"]
    checkpoint.update(key_id=forger.key_id, signature=forger.sign(checkpoint["body"].encode()))
    path.write_text(json.dumps(document))
    code, output = verify_cli(db)
    assert code == 1
    assert "the checkpoint in the audit witness" in output
    assert "not trusted" in output


def test_sessions_of_one_writer_in_several_processes_close_independently(tmp_path):
    """Two engines share one writer: the first to close must not mark the chain closed."""
    witness = Witness([tmp_path / WITNESS_FILE])
    witness.open_session("w", "one")
    witness.open_session("w", "two")
    witness.record("w", None, ended={"one"})
    entry = read_witness(tmp_path / WITNESS_FILE).writers["w"]
    assert set(entry.sessions) == {"two"}
    assert entry.still_open


def test_a_witness_without_a_database_behind_it_is_checked_for_every_writer(tmp_path):
    """An empty store against a witness that saw records: refused, naming the writer."""
    db = Database("sqlite", tmp_path)
    closed_log(db, 6, "w9")
    with pytest.raises(BackendError, match="writer 'w9' has no records"):
        Witness([tmp_path / WITNESS_FILE]).check_database(MemoryStore())
