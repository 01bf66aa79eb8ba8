"""What the witness and trust tests share: engines built as users get them (from
settings, so with a witness), direct SQL on the database, and ``gatekit audit`` runs."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from typer.testing import CliRunner

from gatekit import Action, DecisionRequest, LocalBackend, Outcome, Settings
from gatekit._canonical import canonical_json
from gatekit.audit import Signer
from gatekit.audit._records import checkpoint_body
from gatekit.cli import app

runner = CliRunner()


def settings_for(db: Any, writer_id: str = "w1", **extra: Any) -> Settings:
    return Settings(
        data_dir=db.data_dir,
        database_url=db.url,
        writer_id=writer_id,
        audit_checkpoint_records=5,
        **extra,
    )


def engine(db: Any, writer_id: str = "w1", **extra: Any) -> LocalBackend:
    """The embedded engine as ``Client()`` builds it: signed, witnessed."""
    return LocalBackend(settings=settings_for(db, writer_id, **extra))


def activity(backend: LocalBackend, count: int) -> None:
    """``count`` decisions with their outcomes: twice ``count`` records."""
    for n in range(count):
        request = DecisionRequest.for_action(
            Action(tool="read", risk_level="low", arguments={"n": n}, agent_id="a")
        )
        backend.report(backend.decide(request).decision_id, Outcome(status="success"))
        backend.engine.flush()  # each outcome committed now: a fixed layout to tamper with


def closed_log(db: Any, records: int = 24, writer_id: str = "w1") -> None:
    """A cleanly closed log: checkpoints every 5 records and a final one at close."""
    backend = engine(db, writer_id)
    activity(backend, records // 2)
    backend.close()


def sql(db: Any, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    store = db.open()
    with store._write() as cur:
        cur.execute(store._q(statement), params)
        rows = cur.fetchall() if cur.description else []
    store.close()
    return rows


def record_hash(db: Any, seq: int, writer_id: str = "w1") -> str:
    rows = sql(
        db, "SELECT hash FROM audit_records WHERE writer_id = ? AND seq = ?", (writer_id, seq)
    )
    return str(rows[0][0])


def truncate(db: Any, keep: int, writer_id: str = "w1") -> None:
    """Cut a chain back to ``keep`` as carefully as an attacker would: records,
    checkpoints past it, and the head, so the database agrees with itself."""
    sql(db, "DELETE FROM audit_records WHERE writer_id = ? AND seq > ?", (writer_id, keep))
    sql(db, "DELETE FROM audit_checkpoints WHERE writer_id = ? AND seq > ?", (writer_id, keep))
    sql(
        db,
        "UPDATE audit_heads SET seq = ?, hash = ? WHERE writer_id = ?",
        (keep, record_hash(db, keep, writer_id), writer_id),
    )


def rewrite_and_resign(db: Any, edit_seq: int, signer: Signer, writer_id: str = "w1") -> None:
    """Edit one record, re-link every later one, move the head, and sign every
    checkpoint again with ``signer``: a rewrite by someone holding a signing key."""
    rows = sql(
        db,
        "SELECT seq, body FROM audit_records WHERE writer_id = ? ORDER BY seq",
        (writer_id,),
    )
    prev = None
    hashes: dict[int, str] = {}
    for seq, body in rows:
        content = json.loads(body)
        if seq == edit_seq:
            content["data"]["reason"] = "rewritten"
        if prev is not None:
            content["prev"] = prev
        new_body = canonical_json(content)
        prev = hashes[seq] = hashlib.sha256(new_body).hexdigest()
        sql(
            db,
            "UPDATE audit_records SET body = ?, hash = ? WHERE writer_id = ? AND seq = ?",
            (new_body.decode(), prev, writer_id, seq),
        )
    sql(db, "UPDATE audit_heads SET hash = ? WHERE writer_id = ?", (prev, writer_id))
    for seq, at in sql(
        db, "SELECT seq, at FROM audit_checkpoints WHERE writer_id = ?", (writer_id,)
    ):
        body = checkpoint_body(writer_id, seq, hashes[seq], at, signer.key_id)
        sql(
            db,
            "UPDATE audit_checkpoints SET hash = ?, key_id = ?, body = ?, signature = ?"
            " WHERE writer_id = ? AND seq = ?",
            (hashes[seq], signer.key_id, body.decode(), signer.sign(body), writer_id, seq),
        )


def audit_cli(*args: str) -> tuple[int, str]:
    """Exit code and output (stdout and stderr) of ``gatekit audit …``, whitespace folded."""
    result = runner.invoke(app, ["audit", *args])
    return result.exit_code, " ".join(result.output.split())


def verify_cli(db: Any, *extra: str) -> tuple[int, str]:
    return audit_cli("verify", *db.cli_options, *extra)
