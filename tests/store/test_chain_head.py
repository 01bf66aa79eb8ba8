"""Each store remembers the chain heads it committed, and never trusts that memory."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from gatekit import Action, Decision, Status
from gatekit.audit import AuditLog, verify
from gatekit.audit._records import GENESIS
from gatekit.store import SqliteStore

ACTION = Action(tool="pay", arguments={"amount": 10}, agent_id="agent-1")


def _decision(decision_id: str) -> Decision:
    return Decision(
        decision_id=decision_id,
        status=Status.ALLOWED,
        reason="ok",
        tool="pay",
        action_digest="a" * 64,
        created_at=datetime.now(UTC),
    )


def _assert_one_unbroken_chain(store, writer_id: str, length: int) -> None:
    records = list(store.audit_records(writer_id))
    assert [r.seq for r in records] == list(range(1, length + 1))
    prev = GENESIS
    for record in records:
        assert record.content()["prev"] == prev
        prev = record.hash
    assert store.audit_head(writer_id).hash == prev
    assert verify(store, {}).ok


def test_stores_taking_turns_on_one_chain_keep_it_unbroken(db):
    # Two stores on one database are two processes sharing a writer id (the default:
    # the host name). Each one's remembered head goes stale whenever the other writes.
    first, second = db.open(), db.open()
    log = AuditLog(first, writer_id="host")
    at = datetime.now(UTC)
    for i, store in enumerate([first, second, second, first, first, second]):
        if i % 2:
            store.append_audit(log.event("note", None, {"i": i}, at))
        else:
            store.create(
                _decision(f"dec_{i}"), ACTION, audit=log.event("decision", f"dec_{i}", {}, at)
            )
    _assert_one_unbroken_chain(db.open(), "host", 6)


def test_a_rolled_back_write_leaves_the_remembered_head_alone(tmp_path):
    store = SqliteStore.in_directory(tmp_path)
    store._db.execute(
        "CREATE TRIGGER poison BEFORE INSERT ON audit_records WHEN NEW.kind = 'poison'"
        " BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
    )
    log = AuditLog(store, writer_id="w")
    at = datetime.now(UTC)
    store.append_audit(log.event("note", None, {}, at))
    with pytest.raises(sqlite3.IntegrityError, match="poisoned"):  # after the head moved
        store.append_audit(log.event("poison", None, {}, at))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.append_audit(log.event("note", None, {}, at))
    store._db.set_trace_callback(None)
    assert not any(s.startswith("SELECT") for s in statements), statements
    _assert_one_unbroken_chain(store, "w", 2)
    store.close()


def test_a_decision_with_the_last_outcome_is_three_statements_in_one_commit(tmp_path):
    store = SqliteStore.in_directory(tmp_path)
    log = AuditLog(store, writer_id="w")
    at = datetime.now(UTC)
    store.create(_decision("dec_0"), ACTION, audit=log.event("decision", "dec_0", {}, at))
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    outcome = log.event("outcome", "dec_0", {"status": "success", "detail": ""}, at)
    store.create(
        _decision("dec_1"), ACTION, audit=log.event("decision", "dec_1", {}, at), also=[outcome]
    )
    store._db.set_trace_callback(None)
    assert statements[0] == "BEGIN IMMEDIATE" and statements[-1] == "COMMIT"
    work = statements[1:-1]
    # The decision, the head (compare-and-set), the decision's and the outcome's records.
    assert [s.split()[0] for s in work] == ["INSERT", "UPDATE", "INSERT"], work
    store.close()
    assert sqlite3.connect(tmp_path / "gatekit.db").execute(
        "SELECT COUNT(*) FROM audit_records"
    ).fetchone() == (3,)
