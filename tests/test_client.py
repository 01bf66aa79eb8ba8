"""The client's decision paths, each run once sync and once async."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from gatekit import (
    Action,
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalTimeout,
    AsyncClient,
    Blocked,
    Client,
    DecisionRequest,
    IdempotencyConflict,
    LocalBackend,
    PendingReview,
    RateLimited,
    Rejected,
    ReviewConflict,
    Status,
    ValidationError,
    Verdict,
)
from gatekit.adapters import ToolCallGate
from gatekit.policy import Evaluation
from gatekit.testing import MockBackend, capture_decisions
from tests.gates import GatedTool


def approve_when_pending(backend: LocalBackend, *, reject: bool = False) -> threading.Thread:
    """Play the reviewer from another thread, as a human would."""

    def review() -> None:
        for _ in range(500):
            pending = backend.pending()
            if pending:
                approval_id = pending[0].approval_id or ""
                if reject:
                    backend.reject(approval_id, reviewer="rita", comment="not today")
                else:
                    backend.approve(approval_id, reviewer="rita")
                return
            threading.Event().wait(0.01)

    thread = threading.Thread(target=review, daemon=True)
    thread.start()
    return thread


def test_low_risk_call_runs(kind: str) -> None:
    tool = GatedTool(kind, LocalBackend(), intercept_options={"risk_level": "low"})
    assert tool.call(1, b=2) == "done"
    assert tool.body_calls == [((1,), {"b": 2})]


def test_blocked_call_never_runs(kind: str) -> None:
    tool = GatedTool(kind, MockBackend(default="block"))
    with pytest.raises(Blocked, match="mock verdict: block") as caught:
        tool.call(1)
    assert caught.value.decision.status is Status.BLOCKED
    assert tool.body_calls == []


def test_review_without_waiting_raises_pending_with_approval_id(kind: str) -> None:
    tool = GatedTool(kind, LocalBackend(), intercept_options={"risk_level": "high", "wait": False})
    with pytest.raises(PendingReview) as caught:
        tool.call()
    assert caught.value.approval_id is not None
    assert tool.body_calls == []


def test_reviewed_then_approved_runs_once(kind: str) -> None:
    backend = LocalBackend()
    tool = GatedTool(kind, backend, intercept_options={"risk_level": "high"})
    reviewer = approve_when_pending(backend)
    assert tool.call("INV-1") == "done"
    reviewer.join()
    assert len(tool.body_calls) == 1
    (decision,) = backend.store.list()
    assert decision.status is Status.APPROVED
    assert decision.reviewer == "rita"
    assert decision.consumed_at is not None


def test_rejected_never_runs(kind: str) -> None:
    backend = LocalBackend()
    tool = GatedTool(kind, backend, intercept_options={"risk_level": "medium"})
    reviewer = approve_when_pending(backend, reject=True)
    with pytest.raises(Rejected, match="not today"):
        tool.call()
    reviewer.join()
    assert tool.body_calls == []


def test_review_timeout_never_runs(kind: str) -> None:
    tool = GatedTool(
        kind, LocalBackend(), intercept_options={"risk_level": "critical", "timeout": 0.1}
    )
    with pytest.raises(ApprovalTimeout):
        tool.call()
    assert tool.body_calls == []


def test_expired_approval_is_a_denial(kind: str) -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    backend = LocalBackend(approval_ttl=60, clock=lambda: now[0])
    tool = GatedTool(kind, backend, intercept_options={"risk_level": "high", "wait": False})
    with pytest.raises(PendingReview) as caught:
        tool.call()
    now[0] += timedelta(seconds=61)
    with pytest.raises(ApprovalExpired):
        tool.wait_for_approval(caught.value.decision, timeout=1)
    with pytest.raises(ReviewConflict, match="already expired"):
        backend.approve(caught.value.approval_id or "", reviewer="rita")
    assert tool.body_calls == []


def test_guard_yields_the_decision_and_reports_the_outcome(kind: str) -> None:
    backend = LocalBackend()
    tool = GatedTool(kind, backend)
    decision = tool.guard(tool="read", risk_level="low")
    assert decision.allowed
    assert backend.outcome(decision.decision_id).status == "success"  # type: ignore[attr-defined, union-attr]


def test_guard_body_error_is_reported_as_error() -> None:
    backend = LocalBackend()
    with (
        pytest.raises(ZeroDivisionError),
        Client(backend).guard(tool="read", risk_level="low") as decision,
    ):
        1 / 0  # noqa: B018
    assert backend.outcome(decision.decision_id).status == "error"  # type: ignore[attr-defined, union-attr]


@pytest.mark.anyio
async def test_a_cancelled_body_is_reported_as_cancelled_not_as_an_error() -> None:
    backend = LocalBackend()
    gate = ToolCallGate(AsyncClient(backend), default={"risk_level": "low"})
    request = gate.request("slow", {})

    async def body(_decision: object) -> None:
        await anyio.sleep(30)

    with anyio.move_on_after(0.1):  # the caller gives up
        await gate.arun(request, body)
    (decision,) = backend.store.list()
    outcome = backend.outcome(decision.decision_id)
    assert outcome is not None
    assert outcome.status == "cancelled"


def test_rate_limited_carries_retry_after(kind: str) -> None:
    class Limited:
        def evaluate(self, request: DecisionRequest) -> Evaluation:
            return Evaluation(Verdict.BLOCK, "5 calls per minute", ("limit",), retry_after=12.5)

    tool = GatedTool(kind, LocalBackend(policy=Limited()))
    with pytest.raises(RateLimited) as caught:
        tool.call()
    assert caught.value.retry_after == 12.5
    assert tool.body_calls == []


def test_risk_floor_overrides_a_policy_that_allows_everything(kind: str) -> None:
    class AllowAll:
        def evaluate(self, request: DecisionRequest) -> Evaluation:
            return Evaluation(Verdict.ALLOW, "anything goes", ("allow-all",))

    tool = GatedTool(
        kind,
        LocalBackend(policy=AllowAll()),
        intercept_options={"risk_level": "critical", "wait": False},
    )
    with pytest.raises(PendingReview, match="always need human review"):
        tool.call()
    assert tool.body_calls == []


def test_a_crashing_policy_blocks(kind: str) -> None:
    class Broken:
        def evaluate(self, request: DecisionRequest) -> Evaluation:
            raise KeyError("boom")

    tool = GatedTool(kind, LocalBackend(policy=Broken()), intercept_options={"risk_level": "low"})
    with pytest.raises(Blocked, match="policy evaluation failed"):
        tool.call()
    assert tool.body_calls == []


def test_idempotency_key_reuses_the_decision_and_runs_once(kind: str) -> None:
    backend = LocalBackend()
    fields: dict[str, Any] = {
        "tool": "pay",
        "risk_level": "high",
        "idempotency_key": "inv-7",
        "arguments": {"amount": 5},
    }
    client = Client(backend)
    first = client.decide(**fields)
    assert client.decide(**fields).decision_id == first.decision_id
    backend.approve(first.approval_id or "", reviewer="rita")
    tool = GatedTool(kind, backend)
    assert tool.guard(**fields).status is Status.APPROVED
    with pytest.raises(ApprovalConsumed):
        tool.guard(**fields)
    assert len(tool.body_calls) == 1


def test_idempotency_key_with_another_action_is_an_error() -> None:
    client = Client(LocalBackend())
    client.decide(tool="pay", idempotency_key="k1", arguments={"amount": 5})
    with pytest.raises(IdempotencyConflict, match="k1"):
        client.decide(tool="pay", idempotency_key="k1", arguments={"amount": 6})


def test_approval_is_bound_to_the_exact_action() -> None:
    backend = LocalBackend()
    client = Client(backend)
    decision = client.decide(tool="pay", risk_level="high", arguments={"amount": 5})
    backend.approve(decision.approval_id or "", reviewer="rita")
    changed = DecisionRequest.for_action(
        Action(tool="pay", risk_level="high", arguments={"amount": 500})
    )
    with pytest.raises(Blocked, match="action changed"):
        backend.consume(decision.decision_id, changed)
    same = DecisionRequest.for_action(
        Action(tool="pay", risk_level="high", arguments={"amount": 5})
    )
    assert backend.consume(decision.decision_id, same).consumed_at is not None
    with pytest.raises(ApprovalConsumed):
        backend.consume(decision.decision_id, same)


def test_policy_that_now_blocks_stops_an_approved_action() -> None:
    class Switchable:
        verdict = Verdict.REVIEW

        def evaluate(self, request: DecisionRequest) -> Evaluation:
            return Evaluation(self.verdict, f"now {self.verdict.value}", ("switch",))

    policy = Switchable()
    backend = LocalBackend(policy=policy)
    decision = Client(backend).decide(tool="wire", arguments={"amount": 1})
    backend.approve(decision.approval_id or "", reviewer="rita")
    policy.verdict = Verdict.BLOCK
    request = DecisionRequest.for_action(Action(tool="wire", arguments={"amount": 1}))
    with pytest.raises(Blocked, match="policy now blocks"):
        backend.consume(decision.decision_id, request)


def test_review_races_have_one_winner() -> None:
    backend = LocalBackend()
    decision = Client(backend).decide(tool="t", risk_level="high")
    backend.approve(decision.approval_id or "", reviewer="rita")
    with pytest.raises(ReviewConflict, match=r"already approved \(by rita\)"):
        backend.reject(decision.approval_id or "", reviewer="sam")


def test_review_needs_a_reviewer_identity() -> None:
    backend = LocalBackend()
    decision = Client(backend).decide(tool="t", risk_level="high")
    with pytest.raises(ValidationError, match="reviewer"):
        backend.approve(decision.approval_id or "", reviewer=" ")


def test_guard_takes_an_action_or_fields_not_both() -> None:
    with pytest.raises(ValidationError, match="either"):
        Client(LocalBackend()).guard(Action(tool="t"), tool="u")


def test_capture_decisions_sees_every_decision(kind: str) -> None:
    tool = GatedTool(kind, MockBackend(verdicts={"tool": "allow"}))
    with capture_decisions() as captured:
        tool.call()
        tool.call()
    assert [d.status for d in captured] == [Status.ALLOWED, Status.ALLOWED]
    assert captured.last.tool == "tool"
