"""Unit tests of the shared gate pieces: keys, resume values, messages, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gatekit_langchain import ReviewAnswer, approve, reject
from gatekit_langchain._gate import Gate, GatedCall, idempotency_key, tool_message
from gatekit_langchain._review import parse_answer

import gatekit
from gatekit import Decision, Status
from gatekit.adapters import Refusal, Refused, RunContext
from gatekit.store import MemoryStore
from gatekit.testing import running


def in_thread(thread: str | None, call_id: str | None = "c1") -> GatedCall:
    config = {"configurable": {"thread_id": thread}} if thread else None
    return GatedCall("send_email", {"to": "x"}, call_id, config)  # type: ignore[arg-type]


def key(call: GatedCall) -> str | None:
    return idempotency_key(call)


def test_key_is_stable_per_thread_call_and_action() -> None:
    assert key(in_thread("t1")) == key(in_thread("t1"))
    assert key(in_thread("t1")) != key(in_thread("t2"))
    assert key(in_thread("t1")) != key(in_thread("t1", "c2"))
    other_arguments = GatedCall("send_email", {"to": "y"}, "c1", in_thread("t1").config)
    assert key(in_thread("t1")) != key(other_arguments)  # same id, other arguments
    assert key(in_thread("t1", None)) is None
    found = key(in_thread("t1"))
    assert found is not None
    assert found.startswith("langchain:")
    assert len(found) <= 256


def test_key_uses_the_gatekit_run_only_without_a_thread() -> None:
    with running(RunContext(run_id="run-1")):
        first = key(in_thread(None))
        threaded = key(in_thread("t1"))
    with running(RunContext(run_id="run-2")):
        assert key(in_thread(None)) != first
        assert key(in_thread("t1")) == threaded  # a resume may start a new run
    outside = key(in_thread(None))
    assert outside not in (first, None)  # scoped to this process, not global


def test_resume_values() -> None:
    pending = decision(Status.PENDING_REVIEW, approval_id="apr_1")
    assert parse_answer(approve("alice", "ok"), pending) == ReviewAnswer(
        decision="approve", reviewer="alice", comment="ok"
    )
    assert parse_answer(reject("bob"), pending).reason() == "rejected by bob"
    pinned = parse_answer(approve("alice", approval_id="apr_1"), pending)
    assert pinned.approval_id == "apr_1"
    for bad in ["yes", True, {"decision": "approve"}, approve(" "), {**approve("a"), "x": 1}]:
        with pytest.raises(gatekit.ValidationError, match="invalid review resume value"):
            parse_answer(bad, pending)
    with pytest.raises(gatekit.ValidationError, match="answers approval apr_2, not this call"):
        parse_answer(approve("alice", approval_id="apr_2"), pending)


def decision(status: Status, **extra: object) -> Decision:
    return Decision(
        decision_id="dec_1",
        status=status,
        reason="the reason",
        tool="t",
        action_digest="0" * 64,
        created_at=datetime.now(UTC),
        **extra,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    "error",
    [
        gatekit.Blocked(decision(Status.BLOCKED)),
        gatekit.RateLimited(decision(Status.BLOCKED, retry_after=2.5)),
        gatekit.Rejected(decision(Status.REJECTED)),
        gatekit.PendingReview(decision(Status.PENDING_REVIEW, approval_id="apr_1")),
        gatekit.ApprovalTimeout(decision(Status.PENDING_REVIEW)),
        gatekit.ApprovalExpired(decision(Status.EXPIRED)),
        gatekit.BackendError("socket closed"),
    ],
)
def test_a_denial_tells_the_model_the_kits_refusal(error: gatekit.GatekitError) -> None:
    refused = Refused("t", error)
    assert str(refused) == Refusal.of("t", error).message
    assert tool_message(refused, "call_1").content == Refusal.of("t", error).message


def test_backend_details_do_not_reach_the_model() -> None:
    assert "socket" not in str(Refused("t", gatekit.BackendError("socket closed at 10.0.0.3")))


def test_gate_settings_are_checked_at_construction() -> None:
    with pytest.raises(gatekit.ConfigurationError):
        Gate(on_review="later")  # type: ignore[arg-type]
    with pytest.raises(gatekit.ConfigurationError):
        Gate(on_denied="ignore")  # type: ignore[arg-type]
    with pytest.raises(gatekit.ConfigurationError):
        Gate(review_timeout=0)
    with pytest.raises(gatekit.ConfigurationError):
        Gate(client="not a client")  # type: ignore[arg-type]


def test_a_keyed_call_spends_one_call_of_the_runs_limit() -> None:
    backend = gatekit.LocalBackend(store=MemoryStore())
    gate = Gate(gatekit.Client(backend), on_review="refuse", default={"risk_level": "low"})
    ran: list[str] = []

    def agent(_input: object) -> None:
        for n in range(2):
            gate.run(GatedCall("lookup", {"n": n}, f"call_{n}"), lambda n=n: ran.append(f"r{n}"))

    gatekit.Gateway(gatekit.Client(backend), agent_id="a", max_tool_calls=2).run(agent, input="x")
    assert ran == ["r0", "r1"]
