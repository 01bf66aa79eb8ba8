"""Approvals bound to the exact action, durable across engines, on both stores."""

from __future__ import annotations

import pytest

from gatekit import (
    Action,
    ApprovalConsumed,
    ApprovalExpired,
    Blocked,
    Client,
    DecisionRequest,
    Outcome,
    ReviewConflict,
    Status,
    ValidationError,
    Verdict,
)
from gatekit.policy import DefaultPolicy, Evaluation


def _request(**fields) -> DecisionRequest:
    fields.setdefault("tool", "pay")
    fields.setdefault("risk_level", "high")
    fields.setdefault("agent_id", "agent-1")
    fields.setdefault("arguments", {"invoice": "INV-1", "amount": 10})
    return DecisionRequest.for_action(Action(**fields))


def test_an_approval_made_elsewhere_is_used_once(make_backend):
    agent, reviewer = make_backend(), make_backend()
    request = _request(idempotency_key="pay-INV-1")
    pending = agent.decide(request)
    assert pending.status is Status.PENDING_REVIEW
    approved = reviewer.approve(pending.approval_id, reviewer="alice", comment="checked")
    assert (approved.reviewer, approved.review_comment) == ("alice", "checked")

    seen = agent.decide(request)
    assert seen.decision_id == pending.decision_id
    assert seen.status is Status.APPROVED
    assert agent.consume(seen.decision_id, request).consumed_at is not None
    with pytest.raises(ApprovalConsumed):
        make_backend().consume(seen.decision_id, request)


def test_an_approval_does_not_stretch_to_other_arguments(make_backend):
    backend = make_backend()
    pending = backend.decide(_request())
    backend.approve(pending.approval_id, reviewer="alice")
    changed = _request(arguments={"invoice": "INV-1", "amount": 10_000})
    with pytest.raises(Blocked, match="changed"):
        backend.consume(pending.decision_id, changed)
    kinds = [r.kind for r in backend.store.audit_records()]
    assert kinds == ["decision", "review", "consume_refused"]


def test_an_expired_approval_is_a_denial(make_backend, clock):
    backend = make_backend(approval_ttl=60, clock=clock)
    request = _request()
    pending = backend.decide(request)
    backend.approve(pending.approval_id, reviewer="alice")
    clock.advance(61)
    with pytest.raises(ApprovalExpired):
        backend.consume(pending.decision_id, request)
    assert make_backend().get_decision(pending.decision_id).status is Status.EXPIRED


def test_an_expired_review_cannot_be_approved(make_backend, clock):
    backend = make_backend(approval_ttl=60, clock=clock)
    pending = backend.decide(_request())
    clock.advance(61)
    with pytest.raises(ReviewConflict, match="expired"):
        backend.approve(pending.approval_id, reviewer="alice")


class _Switchable:
    """A policy an operator changes between approval and execution."""

    def __init__(self) -> None:
        self.block = False

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        if self.block:
            return Evaluation(Verdict.BLOCK, "payments frozen", ("ops.freeze",))
        return DefaultPolicy().evaluate(request)


def test_a_policy_that_now_blocks_stops_an_approved_action(make_backend):
    policy = _Switchable()
    backend = make_backend(policy=policy)
    request = _request()
    pending = backend.decide(request)
    backend.approve(pending.approval_id, reviewer="alice")
    policy.block = True
    with pytest.raises(Blocked, match="payments frozen"):
        backend.consume(pending.decision_id, request)
    assert backend.get_decision(pending.decision_id).consumed_at is None


def test_a_reviewer_cannot_approve_their_own_request(make_backend):
    backend = make_backend()
    pending = backend.decide(_request(agent_id="bob"))
    with pytest.raises(ReviewConflict, match="separation of duties"):
        backend.approve(pending.approval_id, reviewer="bob")
    assert backend.reject(pending.approval_id, reviewer="bob").status is Status.REJECTED


def test_separation_of_duties_can_be_turned_off(make_backend):
    backend = make_backend(separation_of_duties=False)
    pending = backend.decide(_request(agent_id="bob"))
    assert backend.approve(pending.approval_id, reviewer="bob").status is Status.APPROVED


def test_the_second_review_gets_a_review_conflict(make_backend):
    backend = make_backend()
    pending = backend.decide(_request())
    make_backend().reject(pending.approval_id, reviewer="carol", comment="no")
    with pytest.raises(ReviewConflict, match="rejected"):
        backend.approve(pending.approval_id, reviewer="alice")


def test_a_guarded_call_is_fully_audited(make_backend):
    backend = make_backend()
    client = Client(backend, agent_id="agent-1")
    ran = []

    @client.intercept(risk_level="low", idempotency_key="nightly-report")
    def report() -> str:
        ran.append(1)
        return "done"

    assert report() == "done"
    backend.engine.flush()  # the outcome would otherwise ride with the next decision
    records = list(backend.store.audit_records())
    assert [r.kind for r in records] == ["decision", "consume", "outcome"]
    decision = backend.store.find_by_idempotency_key("nightly-report")
    assert decision.record_id == records[0].record_id
    assert {r.decision_id for r in records} == {decision.decision_id}


def test_an_outcome_for_an_unknown_decision_is_refused_and_not_recorded(make_backend):
    backend = make_backend()
    with pytest.raises(ValidationError, match="unknown decision"):
        backend.report("dec_nope", Outcome(status="success"))
    assert list(backend.store.audit_records()) == []
