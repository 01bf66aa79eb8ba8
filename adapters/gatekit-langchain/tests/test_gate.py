"""Unit tests of the shared gate pieces: keys, resume values, messages, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gatekit_langchain import ReviewAnswer, approve, denial_message, reject
from gatekit_langchain._gate import Gate, GatedCall, idempotency_key
from gatekit_langchain._review import parse_answer

import gatekit
from gatekit import Decision, Status
from gatekit._context import RunContext, run_context


def in_thread(thread: str | None, call_id: str | None = "c1") -> GatedCall:
    config = {"configurable": {"thread_id": thread}} if thread else None
    return GatedCall("send_email", {"to": "x"}, call_id, config)  # type: ignore[arg-type]


def test_key_is_stable_per_thread_and_call() -> None:
    assert idempotency_key(in_thread("t1")) == idempotency_key(in_thread("t1"))
    assert idempotency_key(in_thread("t1")) != idempotency_key(in_thread("t2"))
    assert idempotency_key(in_thread("t1")) != idempotency_key(in_thread("t1", "c2"))
    assert idempotency_key(in_thread("t1", None)) is None
    key = idempotency_key(in_thread("t1"))
    assert key is not None
    assert key.startswith("langchain:")
    assert len(key) <= 256


def test_key_uses_the_gatekit_run_only_without_a_thread() -> None:
    with run_context(RunContext(run_id="run-1")):
        first = idempotency_key(in_thread(None))
        threaded = idempotency_key(in_thread("t1"))
    with run_context(RunContext(run_id="run-2")):
        assert idempotency_key(in_thread(None)) != first
        assert idempotency_key(in_thread("t1")) == threaded  # a resume may start a new run


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
    ("error", "expected"),
    [
        (gatekit.Blocked(decision(Status.BLOCKED)), "blocked by policy: the reason"),
        (
            gatekit.RateLimited(decision(Status.BLOCKED, retry_after=2.5)),
            "rate limited: the reason; retry after 2.5 s",
        ),
        (gatekit.Rejected(decision(Status.REJECTED)), "a human reviewer rejected it: the reason"),
        (
            gatekit.PendingReview(decision(Status.PENDING_REVIEW, approval_id="apr_1")),
            "it needs human review first (approval apr_1): the reason",
        ),
        (
            gatekit.ApprovalTimeout(decision(Status.PENDING_REVIEW)),
            "no reviewer decided in time: the reason",
        ),
        (gatekit.ApprovalExpired(decision(Status.EXPIRED)), "its approval expired: the reason"),
        (
            gatekit.BackendError("socket closed"),
            "no governance decision could be obtained, so it was refused (fail closed)",
        ),
    ],
)
def test_denial_messages(error: gatekit.GatekitError, expected: str) -> None:
    assert denial_message("t", error) == f"The call to tool 't' was not run: {expected}"


def test_backend_details_do_not_reach_the_model() -> None:
    assert "socket" not in denial_message("t", gatekit.BackendError("socket closed at 10.0.0.3"))


def test_gate_settings_are_checked_at_construction() -> None:
    with pytest.raises(gatekit.ConfigurationError):
        Gate(on_review="later")  # type: ignore[arg-type]
    with pytest.raises(gatekit.ConfigurationError):
        Gate(on_denied="ignore")  # type: ignore[arg-type]
    with pytest.raises(gatekit.ConfigurationError):
        Gate(review_timeout=0)
    with pytest.raises(gatekit.ConfigurationError):
        Gate(client="not a client")  # type: ignore[arg-type]
