"""The Store contract, identical on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gatekit import Action, ConfigurationError, Decision, IdempotencyConflict, Outcome, Status
from gatekit.audit import AuditLog
from gatekit.store._migrations import latest_version


def _decision(decision_id: str, key: str | None = None, digest: str = "a" * 64) -> Decision:
    return Decision(
        decision_id=decision_id,
        status=Status.PENDING_REVIEW,
        reason="needs review",
        tool="pay",
        action_digest=digest,
        created_at=datetime.now(UTC),
        approval_id=f"apr_{decision_id}",
        idempotency_key=key,
    )


ACTION = Action(tool="pay", arguments={"amount": 10}, agent_id="agent-1")


def test_a_decision_round_trips(db):
    store = db.open()
    decision = _decision("dec_1")
    assert store.create(decision, ACTION) == decision
    assert store.get("dec_1") == decision
    assert store.find_by_approval("apr_dec_1") == decision
    assert store.get_action("dec_1") == ACTION
    assert store.get("dec_missing") is None
    assert [d.decision_id for d in store.list(Status.PENDING_REVIEW)] == ["dec_1"]
    assert store.list(Status.APPROVED) == []


def test_state_survives_reopening(db):
    db.open().create(_decision("dec_1", key="k1"), ACTION)
    reopened = db.open()
    assert reopened.find_by_idempotency_key("k1").decision_id == "dec_1"


def test_same_key_same_action_returns_the_first_decision(db):
    store = db.open()
    first = store.create(_decision("dec_1", key="k1"), ACTION)
    again = db.open().create(_decision("dec_2", key="k1"), ACTION)
    assert again == first
    assert store.get("dec_2") is None


def test_same_key_other_action_is_a_conflict(db):
    store = db.open()
    store.create(_decision("dec_1", key="k1"), ACTION)
    with pytest.raises(IdempotencyConflict, match="k1"):
        store.create(_decision("dec_2", key="k1", digest="b" * 64), ACTION)


def test_update_is_compare_and_set(db):
    store, other = db.open(), db.open()
    store.create(_decision("dec_1"), ACTION)
    won = store.update("dec_1", expect_status=Status.PENDING_REVIEW, status=Status.APPROVED)
    lost = other.update("dec_1", expect_status=Status.PENDING_REVIEW, status=Status.REJECTED)
    assert won is not None
    assert won.status is Status.APPROVED
    assert lost is None
    assert other.get("dec_1").status is Status.APPROVED


def test_consumption_happens_once(db):
    store = db.open()
    store.create(_decision("dec_1"), ACTION)
    store.update("dec_1", expect_status=Status.PENDING_REVIEW, status=Status.APPROVED)
    now = datetime.now(UTC)
    first = store.update(
        "dec_1", expect_status=Status.APPROVED, expect_unconsumed=True, consumed_at=now
    )
    second = db.open().update(
        "dec_1", expect_status=Status.APPROVED, expect_unconsumed=True, consumed_at=now
    )
    assert first is not None
    assert first.consumed_at == now
    assert second is None


def test_outcomes_are_kept_as_audit_records_and_ride_with_the_next_decision(db):
    store = db.open()
    log = AuditLog(store, writer_id="w")
    store.create(_decision("dec_1"), ACTION)
    first = log.event(
        "outcome", "dec_1", {"status": "error", "detail": "Timeout"}, datetime.now(UTC)
    )
    store.create(_decision("dec_2"), ACTION, also=[first])  # one transaction for both
    assert db.open().outcome("dec_1") == Outcome(status="error", detail="Timeout")
    later = log.event("outcome", "dec_1", {"status": "success", "detail": ""}, datetime.now(UTC))
    store.append_audit(later)
    assert db.open().outcome("dec_1") == Outcome(status="success")
    assert db.open().outcome("dec_2") is None


def test_audit_records_are_written_with_the_change_and_only_then(db):
    store = db.open()
    audit = AuditLog(store, writer_id="w1")
    at = datetime.now(UTC)
    store.create(
        _decision("dec_1", key="k"), ACTION, audit=audit.event("decision", "dec_1", {}, at)
    )
    # Losing the idempotency race or a compare-and-set writes no record.
    store.create(
        _decision("dec_2", key="k"), ACTION, audit=audit.event("decision", "dec_2", {}, at)
    )
    store.update(
        "dec_1",
        expect_status=Status.APPROVED,
        audit=audit.event("review", "dec_1", {}, at),
        status=Status.REJECTED,
    )
    records = list(db.open().audit_records())
    assert [(r.seq, r.kind, r.decision_id) for r in records] == [(1, "decision", "dec_1")]
    assert store.audit_head("w1").hash == records[0].hash


def test_each_writer_keeps_its_own_chain(db):
    store = db.open()
    at = datetime.now(UTC)
    for writer in ("w1", "w2", "w1"):
        store.append_audit(AuditLog(store, writer_id=writer).event("note", None, {}, at))
    records = list(store.audit_records())
    assert [(r.writer_id, r.seq) for r in records] == [("w1", 1), ("w1", 2), ("w2", 1)]
    assert [h.seq for h in store.audit_heads()] == [2, 1]


def test_migrations_are_idempotent(db):
    db.open()
    db.open()  # a second start applies nothing and does not fail
    store = db.open()
    assert store.list() == []


def test_a_database_from_a_newer_gatekit_is_refused(db):
    store = db.open()
    with store._write() as cur:
        cur.execute(
            store._q("INSERT INTO gatekit_schema (version, name, applied_at) VALUES (?, ?, ?)"),
            (latest_version() + 1, "future", "2099-01-01"),
        )
    with pytest.raises(ConfigurationError, match="newer than this gatekit"):
        db.open()
