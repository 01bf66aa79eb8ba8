"""Group commit: threads writing at once share a transaction, and each one is
released only when its own write is committed (or has failed on its own)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from gatekit import Action, BackendError, Decision, Status
from gatekit.audit import AuditLog, verify
from gatekit.store import SqliteStore
from gatekit.store._group_commit import GroupCommit, _Entry
from gatekit.store._sql import Write

pytestmark = pytest.mark.timeout(60)


class Recorder:
    """A commit function that records its batches; the first one waits for ``go``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.committed: set[str] = set()
        self.started = threading.Event()
        self.go = threading.Event()

    def __call__(self, writes: list[str]) -> None:
        if not self.batches:
            self.started.set()
            assert self.go.wait(10)
        if "bad" in writes:
            raise ValueError("bad write")
        self.batches.append(list(writes))
        self.committed.update(writes)


def _queue_behind_a_slow_leader(group, recorder, followers):
    """Start a leader whose commit waits, queue ``followers`` behind it, and let it go."""
    pool = ThreadPoolExecutor(len(followers) + 1)
    leader = pool.submit(group.submit, "leader")
    assert recorder.started.wait(10)
    queued = [pool.submit(group.submit, name) for name in followers]
    while len(group._queue) < len(followers) + 1:  # all of them are waiting in line
        threading.Event().wait(0.001)
    recorder.go.set()
    return leader, queued, pool


def test_writers_queued_behind_a_commit_share_the_next_one():
    recorder = Recorder()
    group = GroupCommit(recorder, patience=10)
    leader, queued, pool = _queue_behind_a_slow_leader(group, recorder, ["a", "b", "c"])
    leader.result(10)
    for future in queued:
        future.result(10)  # returned: its write is in a committed batch
    pool.shutdown()
    assert recorder.batches[0] == ["leader"]
    assert sorted(recorder.batches[1]) == ["a", "b", "c"]  # one transaction for the three
    assert recorder.committed == {"leader", "a", "b", "c"}


def test_a_failing_write_fails_its_own_caller_only():
    recorder = Recorder()
    group = GroupCommit(recorder, patience=10)
    leader, queued, pool = _queue_behind_a_slow_leader(group, recorder, ["a", "bad", "c"])
    leader.result(10)
    outcomes = {}
    for name, future in zip(["a", "bad", "c"], queued, strict=True):
        try:
            future.result(10)
            outcomes[name] = "ok"
        except ValueError:
            outcomes[name] = "failed"
    pool.shutdown()
    assert outcomes == {"a": "ok", "bad": "failed", "c": "ok"}
    assert recorder.committed == {"leader", "a", "c"}


def test_waiting_for_a_stuck_commit_is_bounded():
    recorder = Recorder()
    group = GroupCommit(recorder, patience=0.2)
    with ThreadPoolExecutor(2) as pool:
        leader = pool.submit(group.submit, "leader")
        assert recorder.started.wait(10)
        follower = pool.submit(group.submit, "late")
        with pytest.raises(BackendError, match="did not take this write"):
            follower.result(10)
        recorder.go.set()
        leader.result(10)
    assert recorder.committed == {"leader"}  # the one who gave up was not written


def test_a_write_its_leader_has_taken_is_waited_for_past_the_patience():
    class Slow(Recorder):
        def __call__(self, writes: list[str]) -> None:
            if len(self.batches) == 1:  # the batch holding the follower
                threading.Event().wait(0.5)
            super().__call__(writes)

    recorder = Slow()
    group = GroupCommit(recorder, patience=0.3)
    # "a" leads the second batch, which holds "taken" too and takes 0.5 s.
    leader, queued, pool = _queue_behind_a_slow_leader(group, recorder, ["a", "taken"])
    leader.result(10)
    for future in queued:
        future.result(10)  # committed, and told so, though it took longer than 0.3 s
    pool.shutdown()
    assert sorted(recorder.batches[1]) == ["a", "taken"]
    assert recorder.committed == {"leader", "a", "taken"}


def test_writers_behind_one_who_gave_up_still_get_their_turn():
    recorder = Recorder()
    group = GroupCommit(recorder, patience=0.3, max_batch=1)
    with ThreadPoolExecutor(3) as pool:
        leader = pool.submit(group.submit, "leader")
        assert recorder.started.wait(10)
        gave_up = pool.submit(group.submit, "gave-up")
        while len(group._queue) < 2:
            threading.Event().wait(0.001)
        with pytest.raises(BackendError):
            gave_up.result(10)  # never taken: a batch holds one write here
        later = pool.submit(group.submit, "later")
        while len(group._queue) < 3:
            threading.Event().wait(0.001)
        recorder.go.set()
        leader.result(10)
        later.result(10)
    assert recorder.committed == {"leader", "later"}


def test_an_interrupted_leader_releases_nobody_as_committed():
    class Interrupting(Recorder):
        def __call__(self, writes: list[str]) -> None:
            if len(writes) > 1:
                raise KeyboardInterrupt
            super().__call__(writes)

    recorder = Interrupting()
    group = GroupCommit(recorder, patience=10)
    leader, queued, pool = _queue_behind_a_slow_leader(group, recorder, ["a", "b", "c"])
    leader.result(10)
    errors = []
    for future in queued:
        try:
            future.result(10)
        except BaseException as error:
            errors.append(type(error).__name__)
    pool.shutdown()
    assert sorted(errors) == ["BackendError", "BackendError", "KeyboardInterrupt"]
    assert recorder.committed == {"leader"}


ACTION = Action(tool="pay", arguments={"amount": 1}, agent_id="agent-1")


def _decision(decision_id: str, key: str | None = None) -> Decision:
    return Decision(
        decision_id=decision_id,
        status=Status.ALLOWED,
        reason="ok",
        tool="pay",
        action_digest="a" * 64,
        created_at=datetime.now(UTC),
        idempotency_key=key,
    )


def test_sqlite_commits_eight_threads_decisions_together_and_the_chain_holds(tmp_path):
    store = SqliteStore.in_directory(tmp_path, synchronous="full")
    log = AuditLog(store, writer_id="w")
    commits = []
    store._db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    def decide(thread: int) -> None:
        for i in range(40):
            decision_id = f"dec_{thread}_{i}"
            outcome = log.event("outcome", decision_id, {"status": "success"}, datetime.now(UTC))
            event = log.event("decision", decision_id, {}, datetime.now(UTC))
            store.create(_decision(decision_id), ACTION, audit=event, also=[outcome])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(decide, range(8)))
    store._db.set_trace_callback(None)
    assert len(store.list(limit=1000)) == 320
    assert len(commits) < 320  # some decisions shared a commit
    records = list(store.audit_records("w"))
    assert [r.seq for r in records] == list(range(1, 641))
    assert verify(store, {}).ok
    store.close()


def test_a_batch_with_a_taken_decision_id_is_written_one_by_one(tmp_path):
    store = SqliteStore.in_directory(tmp_path)
    log = AuditLog(store, writer_id="w")
    at = datetime.now(UTC)
    store.create(_decision("dec_taken"), ACTION, audit=log.event("decision", "dec_taken", {}, at))
    first = Write(
        ("dec_new", None, None, None, "allowed", "t", None, "a", "{}", "{}"),
        audit=log.event("decision", "dec_new", {}, at),
    )
    again = Write(
        ("dec_taken", None, None, None, "allowed", "t", None, "a", "{}", "{}"),
        audit=log.event("decision", "dec_taken", {}, at),
    )
    GroupCommit(store._commit_writes, patience=10)._commit_each([_Entry(first), _Entry(again)])
    assert (first.inserted, again.inserted) == (True, False)
    assert [r.decision_id for r in store.audit_records("w")] == ["dec_taken", "dec_new"]
    store.close()
