"""A decision row edited behind the engine's back is refused: consume re-derives the
state from the decision's hash-chained audit records."""

from __future__ import annotations

import sqlite3

import pytest

from gatekit import Action, Blocked, DecisionRequest, LocalBackend, Settings, Status


@pytest.fixture
def backend(tmp_path):
    engine = LocalBackend(settings=Settings(data_dir=tmp_path / "state"))
    yield engine
    engine.close()


def _edit(backend: LocalBackend, sql: str, *params: object) -> None:
    with sqlite3.connect(backend.store.path) as db:  # type: ignore[attr-defined]
        db.execute(sql, params)


def _refusals(backend: LocalBackend, decision_id: str) -> list[str]:
    return [r.kind for r in backend.store.decision_records(decision_id) if "refused" in r.kind]


def test_a_row_edited_to_approved_is_refused(backend):
    request = DecisionRequest.for_action(Action(tool="pay", risk_level="high"))
    pending = backend.decide(request)
    forged = pending.model_copy(update={"status": Status.APPROVED})
    _edit(
        backend,
        "UPDATE decisions SET status = 'approved', decision = ? WHERE decision_id = ?",
        forged.model_dump_json(),
        pending.decision_id,
    )
    with pytest.raises(Blocked, match="does not match its audit records"):
        backend.consume(pending.decision_id, request)
    assert _refusals(backend, pending.decision_id) == ["consume_refused"]


def test_a_used_approval_made_unused_again_is_refused(backend):
    request = DecisionRequest.for_action(Action(tool="pay", risk_level="high"))
    pending = backend.decide(request)
    backend.approve(pending.approval_id, reviewer="alice")
    used = backend.consume(pending.decision_id, request)
    unused = used.model_copy(update={"consumed_at": None})
    _edit(
        backend,
        "UPDATE decisions SET consumed_at = NULL, decision = ? WHERE decision_id = ?",
        unused.model_dump_json(),
        pending.decision_id,
    )
    with pytest.raises(Blocked, match="does not match its audit records"):
        backend.consume(pending.decision_id, request)


def test_an_untouched_approval_is_used_once(backend):
    request = DecisionRequest.for_action(Action(tool="pay", risk_level="high"))
    pending = backend.decide(request)
    backend.approve(pending.approval_id, reviewer="alice")
    assert backend.consume(pending.decision_id, request).consumed_at is not None
