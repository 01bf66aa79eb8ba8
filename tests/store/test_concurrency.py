"""Races settled by the database, on both stores: threads, and real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from gatekit import Action, DecisionRequest, ReviewConflict, Status

WORKER = Path(__file__).with_name("race_worker.py")
THREADS = 8


def _request(key: str) -> DecisionRequest:
    return DecisionRequest.for_action(
        Action(
            tool="pay",
            risk_level="high",
            agent_id="agent-1",
            idempotency_key=key,
            arguments={"invoice": "INV-7"},
        )
    )


def _together(targets):
    """Run callables in threads released at the same moment; return results/errors."""
    barrier = threading.Barrier(len(targets))
    results: list[object] = [None] * len(targets)

    def run(index, target):
        barrier.wait()
        try:
            results[index] = target()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def _decisions_for(store, key):
    decision = store.find_by_idempotency_key(key)
    records = [r for r in store.audit_records() if r.kind == "decision"]
    return decision, records


def test_threads_racing_on_one_key_get_one_approval(make_backend):
    backends = [make_backend() for _ in range(THREADS)]
    results = _together([lambda b=b: b.decide(_request("race-1")) for b in backends])
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.decision_id for r in results}) == 1
    assert len({r.approval_id for r in results}) == 1
    decision, records = _decisions_for(backends[0].store, "race-1")
    assert decision.decision_id == results[0].decision_id
    assert len(records) == 1
    assert len(backends[0].pending()) == 1


def test_approve_and_reject_racing_one_wins(make_backend):
    pending = make_backend().decide(_request("race-2"))
    approver, rejecter = make_backend(), make_backend()
    results = _together(
        [
            lambda: approver.approve(pending.approval_id, reviewer="alice"),
            lambda: rejecter.reject(pending.approval_id, reviewer="carol"),
        ]
    )
    winners = [r for r in results if not isinstance(r, Exception)]
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert isinstance(losers[0], ReviewConflict)
    final = make_backend().get_decision(pending.decision_id)
    assert final.status is winners[0].status
    reviews = [r for r in approver.store.audit_records() if r.kind == "review"]
    assert len(reviews) == 1


def _race_processes(db, tmp_path, tasks):
    go = tmp_path / "go"
    env = {**os.environ, **db.env}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(go), task, arg],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for task, arg in tasks
    ]
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


def test_two_processes_racing_on_one_key_get_one_approval(db, tmp_path):
    results = _race_processes(db, tmp_path, [("decide", "proc-key"), ("decide", "proc-key")])
    assert all("error" not in result for result in results), results
    assert results[0] == results[1]
    store = db.open()
    decision, records = _decisions_for(store, "proc-key")
    assert decision.decision_id == results[0]["decision_id"]
    assert len(records) == 1
    assert len(store.list(Status.PENDING_REVIEW)) == 1


def test_two_processes_racing_approve_and_reject_one_wins(db, tmp_path, make_backend):
    pending = make_backend().decide(_request("proc-review"))
    results = _race_processes(
        db, tmp_path, [("approve", pending.approval_id), ("reject", pending.approval_id)]
    )
    winners = [r for r in results if "status" in r]
    losers = [r for r in results if "error" in r]
    assert (len(winners), len(losers)) == (1, 1), results
    assert losers[0]["error"] == "ReviewConflict"
    assert db.open().get(pending.decision_id).status.value == winners[0]["status"]
