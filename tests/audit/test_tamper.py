"""Every kind of tampering is caught by ``gatekit audit verify``, naming the record."""

from __future__ import annotations

import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from gatekit import Action, DecisionRequest, Outcome
from gatekit.audit._keys import Signer
from gatekit.audit._records import checkpoint_body
from gatekit.cli import app

runner = CliRunner()


def _verify(db, *extra):
    result = runner.invoke(app, ["audit", "verify", *db.cli_options, *extra])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture
def logged(db, make_backend):
    """A log of 24 records with checkpoints every 5 and a final one at close."""
    backend = make_backend(checkpoint_every=5)
    for n in range(12):
        request = DecisionRequest.for_action(
            Action(tool="read", risk_level="low", arguments={"n": n}, agent_id="a")
        )
        decision = backend.decide(request)
        backend.report(decision.decision_id, Outcome(status="success"))
        backend.engine.flush()  # each outcome in its own commit: a fixed layout to tamper with
    backend.close()
    return db


def _sql(db, statement, params=()):
    store = db.open()
    with store._write() as cur:
        cur.execute(store._q(statement), params)
        rows = cur.fetchall() if cur.description else []
    store.close()
    return rows


def _record(db, seq):
    rows = _sql(db, "SELECT body, hash FROM audit_records WHERE seq = ?", (seq,))
    return rows[0]


def test_an_untouched_log_verifies(logged):
    code, output = _verify(logged)
    assert code == 0, output
    assert "OK 24 records in 1 chain(s)" in output


def test_an_edited_field_is_caught(logged):
    body, _ = _record(logged, 8)
    edited = body.replace('"status":"success"', '"status":"error"')
    assert edited != body
    _sql(logged, "UPDATE audit_records SET body = ? WHERE seq = 8", (edited,))
    code, output = _verify(logged)
    assert code == 1
    assert "record seq 8" in output
    assert "edited" in output


def test_an_edit_with_a_recomputed_hash_is_caught(logged):
    body, _ = _record(logged, 8)
    forged = body.replace('"status":"success"', '"status":"error"')
    _sql(
        logged,
        "UPDATE audit_records SET body = ?, hash = ? WHERE seq = 8",
        (forged, hashlib.sha256(forged.encode()).hexdigest()),
    )
    code, output = _verify(logged)
    assert code == 1
    assert "record seq 9" in output
    assert "does not link" in output


def test_an_edited_query_column_is_caught(logged):
    _sql(logged, "UPDATE audit_records SET kind = 'outcome' WHERE seq = 3")
    code, output = _verify(logged)
    assert code == 1
    assert "record seq 3" in output


def test_a_deleted_record_is_caught(logged):
    _sql(logged, "DELETE FROM audit_records WHERE seq = 4")
    code, output = _verify(logged)
    assert code == 1
    assert "record seq 5" in output
    assert "expected seq 4" in output


def test_swapped_records_are_caught(logged):
    (body4, hash4), (body5, hash5) = _record(logged, 4), _record(logged, 5)
    _sql(logged, "UPDATE audit_records SET body = ?, hash = ? WHERE seq = 4", (body5, hash5))
    _sql(logged, "UPDATE audit_records SET body = ?, hash = ? WHERE seq = 5", (body4, hash4))
    code, output = _verify(logged)
    assert code == 1
    assert "record seq 4" in output


def test_an_inserted_record_is_caught(logged):
    body, _ = _record(logged, 9)
    _sql(logged, "UPDATE audit_records SET seq = seq + 1000 WHERE seq > 9")
    _sql(logged, "UPDATE audit_records SET seq = seq - 999 WHERE seq > 1000")
    content = json.loads(body)
    content.update(seq=10, prev=_record(logged, 9)[1], id="rec_forged")
    forged = json.dumps(content, sort_keys=True, separators=(",", ":"))
    _sql(
        logged,
        "INSERT INTO audit_records (writer_id, seq, record_id, at, kind, decision_id, body, hash)"
        " VALUES (?, 10, 'rec_forged', ?, ?, ?, ?, ?)",
        (
            content["writer"],
            content["at"],
            content["kind"],
            content["decision_id"],
            forged,
            hashlib.sha256(forged.encode()).hexdigest(),
        ),
    )
    code, output = _verify(logged)
    assert code == 1
    assert "record seq 10 (rec_forged)" in output


def test_truncation_is_caught(logged):
    _sql(logged, "DELETE FROM audit_records WHERE seq > 20")
    _sql(logged, "UPDATE audit_heads SET seq = 20, hash = ?", (_record(logged, 20)[1],))
    code, output = _verify(logged)
    assert code == 1
    assert "truncated" in output
    assert "seq 24" in output


def test_truncation_is_caught_even_without_a_checkpoint_beyond(logged):
    _sql(logged, "DELETE FROM audit_checkpoints WHERE seq > 20")
    _sql(logged, "DELETE FROM audit_records WHERE seq > 20")
    code, output = _verify(logged)
    assert code == 1
    assert "head is seq 24" in output


def test_a_checkpoint_forged_with_another_key_is_caught(logged):
    forger = Signer(Ed25519PrivateKey.generate())
    head_hash = _record(logged, 24)[1]
    body = checkpoint_body(
        "test-writer", 24, head_hash, "2026-01-01T00:00:00.000000+00:00", forger.key_id
    )
    _sql(logged, "DELETE FROM audit_checkpoints")
    _sql(
        logged,
        "INSERT INTO audit_checkpoints (writer_id, seq, hash, at, key_id, body, signature)"
        " VALUES ('test-writer', 24, ?, '2026-01-01T00:00:00.000000+00:00', ?, ?, ?)",
        (head_hash, forger.key_id, body.decode(), forger.sign(body)),
    )
    code, output = _verify(logged)
    assert code == 1
    assert "unknown key" in output


def test_a_checkpoint_claiming_the_real_key_id_is_caught(logged):
    forger = Signer(Ed25519PrivateKey.generate())
    real = _sql(logged, "SELECT key_id, body FROM audit_checkpoints WHERE seq = 24")[0]
    _sql(
        logged,
        "UPDATE audit_checkpoints SET signature = ? WHERE seq = 24",
        (forger.sign(real[1].encode()),),
    )
    code, output = _verify(logged)
    assert code == 1
    assert "signature does not verify" in output


def test_a_rewritten_chain_fails_against_the_signed_checkpoints(logged):
    """Edit a record and re-link everything after it: the checkpoints give it away."""
    rows = _sql(logged, "SELECT seq, body FROM audit_records ORDER BY seq")
    prev = None
    for seq, body in rows:
        content = json.loads(body)
        if seq == 3:
            content["data"]["reason"] = "rewritten"
        if prev is not None:
            content["prev"] = prev
        new_body = json.dumps(content, sort_keys=True, separators=(",", ":"))
        prev = hashlib.sha256(new_body.encode()).hexdigest()
        _sql(
            logged,
            "UPDATE audit_records SET body = ?, hash = ? WHERE seq = ?",
            (new_body, prev, seq),
        )
    _sql(logged, "UPDATE audit_heads SET hash = ?", (prev,))
    code, output = _verify(logged)
    assert code == 1
    assert "record seq 5" in output
    assert "checkpoint" in output


def test_deleting_the_oldest_records_outside_retention_is_caught(logged):
    _sql(logged, "DELETE FROM audit_records WHERE seq <= 10")  # 10 is a checkpoint
    code, output = _verify(logged)
    assert code == 1
    assert "record seq 11" in output
    assert "outside retention" in output
