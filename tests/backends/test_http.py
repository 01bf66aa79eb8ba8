"""HttpBackend against a real ``gatekit serve``: the decision lifecycle through
``Client`` (guard and intercept, sync and async), reviews, and the engine's own
exceptions mapped back from the server's problem documents."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import anyio
import pytest

from gatekit import (
    Action,
    ApprovalConsumed,
    AsyncClient,
    BackendError,
    Blocked,
    Client,
    DecisionRequest,
    HttpBackend,
    IdempotencyConflict,
    Outcome,
    PendingReview,
    Rejected,
    ReviewConflict,
    Status,
    ValidationError,
)
from gatekit.api_keys import Role
from gatekit.backends import Backend, ReviewBackend
from tests.backends.live_server import LiveServer


def unique(prefix: str) -> str:
    """A tool name no other test uses: the server is shared by the session."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def recorded(server: LiveServer, tool: str) -> list[Any]:
    store = server.store()
    try:
        return [d for d in store.list() if d.tool == tool]
    finally:
        store.close()


class Approver:
    """A reviewer elsewhere: approves (or rejects) the first pending review of ``tool``."""

    def __init__(self, backend: HttpBackend, tool: str, approve: bool = True) -> None:
        self.backend, self.tool, self.approve = backend, tool, approve
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.02):
            for decision in self.backend.pending():
                if decision.tool != self.tool or decision.approval_id is None:
                    continue
                verb = self.backend.approve if self.approve else self.backend.reject
                verb(decision.approval_id, reviewer="ignored", comment="checked")
                return

    def __enter__(self) -> Approver:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def test_it_is_a_backend_and_a_review_backend(live_server: LiveServer) -> None:
    backend = live_server.backend()
    assert isinstance(backend, Backend)
    assert isinstance(backend, ReviewBackend)
    assert backend.ready()
    assert "gk_" not in repr(backend)


def test_guard_and_intercept_run_allowed_calls_and_record_their_outcomes(
    live_server: LiveServer,
) -> None:
    client = Client(live_server.backend(), agent_id="billing-bot")
    read, ran = unique("read"), []
    with client.guard(tool=read, risk_level="low", operation_class="read") as decision:
        ran.append(decision.status)

    @client.intercept(tool=read, risk_level="low", operation_class="read")
    def lookup(account: str) -> str:
        ran.append(account)
        return f"balance of {account}"

    assert lookup("acme") == "balance of acme"
    assert ran == [Status.ALLOWED, "acme"]
    decisions = recorded(live_server, read)
    assert [d.status for d in decisions] == [Status.ALLOWED, Status.ALLOWED]
    # The key made for retries is the server's business, not a single-use promise.
    assert decision.idempotency_key is None


def test_a_blocked_call_never_runs(live_server: LiveServer) -> None:
    client = Client(live_server.backend(), agent_id="billing-bot")
    drop, ran = unique("drop"), []

    @client.intercept(tool=drop)
    def drop_table(name: str) -> None:
        ran.append(name)

    with pytest.raises(Blocked) as refused:
        drop_table("customers")
    assert ran == []
    assert refused.value.decision.reason == "never drop tables"
    assert refused.value.decision.rule_ids == ["no-drops"]


def test_a_review_approved_through_the_server_runs_the_call_once(live_server: LiveServer) -> None:
    client = Client(live_server.backend(), agent_id="billing-bot", approval_timeout=30)
    pay, ran = unique("pay"), []

    @client.intercept(tool=pay, capture_arguments=True)
    def pay_invoice(amount: int) -> str:
        ran.append(amount)
        return "paid"

    with Approver(live_server.backend(Role.REVIEWER), pay):
        assert pay_invoice(40) == "paid"
    assert ran == [40]
    (decision,) = recorded(live_server, pay)
    assert decision.status is Status.APPROVED
    assert decision.reviewer == "reviewer-1"  # the key's holder, not the name passed
    assert decision.consumed_at is not None


def test_a_rejected_review_never_runs_the_call(live_server: LiveServer) -> None:
    client = Client(live_server.backend(), agent_id="billing-bot", approval_timeout=30)
    pay, ran = unique("pay"), []
    with (
        Approver(live_server.backend(Role.REVIEWER), pay, approve=False),
        pytest.raises(Rejected),
        client.guard(tool=pay),
    ):
        ran.append("ran")
    assert ran == []


def test_the_async_client_decides_guards_and_waits_for_review(live_server: LiveServer) -> None:
    backend = live_server.backend()
    client = AsyncClient(backend, agent_id="billing-bot", approval_timeout=30)
    read, pay, ran = unique("read"), unique("pay"), []

    @client.intercept(tool=read, risk_level="low", operation_class="read")
    async def lookup(account: str) -> str:
        ran.append(account)
        return account.upper()

    async def scenario() -> None:
        assert await lookup("acme") == "ACME"
        async with client.guard(tool=pay) as decision:
            ran.append(decision.status)
        blocked = await client.decide(tool=unique("drop"))
        assert blocked.status is Status.BLOCKED
        assert await client.ready()
        await backend.aclose()

    with Approver(live_server.backend(Role.REVIEWER), pay):
        anyio.run(scenario)
    assert ran == ["acme", Status.APPROVED]


def test_async_calls_work_from_one_event_loop_after_another(live_server: LiveServer) -> None:
    # An httpx.AsyncClient belongs to the loop it first ran in: each loop gets its own.
    backend = live_server.backend()
    request = DecisionRequest.for_action(Action(tool=unique("read"), risk_level="low"))

    async def decide() -> Status:
        return (await backend.adecide(request)).status

    assert [anyio.run(decide), anyio.run(decide), anyio.run(decide, backend="trio")] == [
        Status.ALLOWED
    ] * 3


def test_review_methods_list_approve_and_report_conflicts(live_server: LiveServer) -> None:
    agent, reviewer = live_server.backend(), live_server.backend(Role.REVIEWER)
    request = DecisionRequest.for_action(Action(tool=unique("pay"), agent_id="billing-bot"))
    pending = agent.decide(request)
    assert pending.status is Status.PENDING_REVIEW
    assert pending.approval_id in [d.approval_id for d in reviewer.pending()]

    approved = reviewer.approve(pending.approval_id or "", reviewer="rita", comment="fine")
    assert (approved.status, approved.reviewer, approved.review_comment) == (
        Status.APPROVED,
        "reviewer-1",
        "fine",
    )
    assert pending.approval_id not in [d.approval_id for d in reviewer.pending()]
    with pytest.raises(ReviewConflict, match="already approved"):
        reviewer.reject(pending.approval_id or "", reviewer="rita")

    used = agent.consume(pending.decision_id, request)
    assert used.consumed_at is not None
    with pytest.raises(ApprovalConsumed) as again:
        agent.consume(pending.decision_id, request)
    assert again.value.decision.decision_id == pending.decision_id


def test_refused_uses_raise_the_engines_exceptions(live_server: LiveServer) -> None:
    backend = live_server.backend()
    pay = DecisionRequest.for_action(Action(tool=unique("pay")))
    pending = backend.decide(pay)
    with pytest.raises(Blocked, match="pending_review, not allowed") as blocked:
        backend.consume(pending.decision_id, pay)
    assert blocked.value.decision.status is Status.PENDING_REVIEW

    other = DecisionRequest.for_action(Action(tool=pay.action.tool, arguments={"x": 1}))
    with pytest.raises(Blocked, match="changed after it was decided"):
        backend.consume(pending.decision_id, other)

    with pytest.raises(ValidationError, match="unknown decision"):
        backend.get_decision("dec_does_not_exist")
    with pytest.raises(ValidationError, match="unknown decision"):
        backend.report("dec_does_not_exist", Outcome(status="success"))


def test_an_idempotency_key_reused_for_another_action_is_a_conflict(
    live_server: LiveServer,
) -> None:
    backend, key, tool = live_server.backend(), uuid.uuid4().hex, unique("read")
    first = backend.decide(
        DecisionRequest.for_action(Action(tool=tool, idempotency_key=key, arguments={"a": 1}))
    )
    again = backend.decide(
        DecisionRequest.for_action(Action(tool=tool, idempotency_key=key, arguments={"a": 1}))
    )
    assert again.decision_id == first.decision_id
    assert again.idempotency_key == key  # the caller's own key is handed back
    with pytest.raises(IdempotencyConflict):
        backend.decide(
            DecisionRequest.for_action(Action(tool=tool, idempotency_key=key, arguments={"a": 2}))
        )


def test_keys_without_the_role_or_revoked_fail_closed(live_server: LiveServer) -> None:
    with pytest.raises(BackendError, match="403"):
        live_server.backend(Role.AGENT).pending()
    wrong = HttpBackend(live_server.url, api_key="gk_0000000000000000_wrong", retries=0)
    ran: list[str] = []
    with pytest.raises(BackendError, match="401"), Client(wrong).guard(tool=unique("read")):
        ran.append("ran")
    assert ran == []


def test_preview_records_nothing(live_server: LiveServer) -> None:
    backend, tool = live_server.backend(), unique("pay")
    preview = backend.preview(DecisionRequest.for_action(Action(tool=tool)))
    assert preview.status is Status.PENDING_REVIEW
    assert preview.approval_id is None
    assert recorded(live_server, tool) == []


def test_pending_review_without_waiting_raises_with_the_approval_id(
    live_server: LiveServer,
) -> None:
    client = Client(live_server.backend())
    with pytest.raises(PendingReview) as waiting, client.guard(tool=unique("pay"), wait=False):
        pass
    assert waiting.value.approval_id is not None
