"""The client enforces what it knows, whatever a backend answers: the risk floor, its
own blocking checks, an approval's id, a bound on every wait, and the arguments
that were decided. Each case runs through every entry point, sync and async."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from gatekit import (
    BackendError,
    Blocked,
    Client,
    Decision,
    DecisionRequest,
    Gateway,
    LocalBackend,
    Status,
)
from gatekit.adapters import Refused, ToolCallGate
from gatekit.store import MemoryStore
from tests.gates import GatedTool


class Says(LocalBackend):
    """A backend that answers every request with ``status``, whatever policy would say."""

    def __init__(self, status: Status, approval_id: str | None = None) -> None:
        super().__init__(store=MemoryStore())
        self.status, self.approval_id = status, approval_id

    def _answer(self, request: DecisionRequest) -> Decision:
        return Decision(
            decision_id="dec_lie",
            status=self.status,
            reason="trust me",
            tool=request.action.tool,
            action_digest=request.action_digest,
            created_at=datetime.now(UTC),
            approval_id=self.approval_id,
        )

    def decide(self, request: DecisionRequest) -> Decision:
        return self._answer(request)

    def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
        return self._answer(request)

    async def adecide(self, request: DecisionRequest) -> Decision:
        return self._answer(request)

    async def aconsume(self, decision_id: str, request: DecisionRequest) -> Decision:
        return self._answer(request)


class HangsSync(LocalBackend):
    """A sync backend that never answers (a dead socket, a lock held forever)."""

    def __init__(self) -> None:
        super().__init__(store=MemoryStore())
        self.release = threading.Event()

    def decide(self, request: DecisionRequest) -> Decision:
        self.release.wait(60)
        raise AssertionError("unreachable")


@pytest.mark.parametrize("risk", ["high", "critical"])
def test_an_allowed_high_risk_action_never_runs(kind: str, risk: str) -> None:
    tool = GatedTool(kind, Says(Status.ALLOWED), intercept_options={"risk_level": risk})
    with pytest.raises(BackendError, match="without review"):
        tool.call(1)
    with pytest.raises(BackendError, match="without review"):
        tool.guard(tool="wipe", risk_level=risk)
    assert tool.body_calls == []


def test_an_approval_without_an_approval_id_never_runs(kind: str) -> None:
    tool = GatedTool(kind, Says(Status.APPROVED), intercept_options={"risk_level": "high"})
    with pytest.raises(BackendError, match="without an approval id"):
        tool.call(1)
    assert tool.body_calls == []


def test_what_the_client_blocks_stays_blocked(kind: str) -> None:
    tool = GatedTool(
        kind,
        Says(Status.ALLOWED),
        client_options={"dlp_mode": "block"},
        intercept_options={"risk_level": "low", "capture_arguments": True},
    )
    with pytest.raises(BackendError, match="client's own checks"):
        tool.call("AKIAIOSFODNN7EXAMPLE")
    assert tool.body_calls == []


def test_fail_open_never_runs_what_needs_a_human() -> None:
    backend = Says(Status.ALLOWED)
    client = Client(backend, fail_mode="open")
    ran: list[int] = []
    with pytest.raises(BackendError), client.guard(tool="pay", risk_level="critical"):
        ran.append(1)
    assert ran == []


def test_the_gateway_and_the_adapter_kit_refuse_an_allowed_critical_run() -> None:
    client = Client(Says(Status.ALLOWED))
    ran: list[Any] = []
    with pytest.raises(BackendError):
        Gateway(client, agent_id="a", run_risk_level="critical").run(ran.append, input="x")
    gate = ToolCallGate(client, default={"risk_level": "critical"})
    with pytest.raises(Refused) as refused:
        gate.run(gate.request("wipe", {}), lambda _decision: ran.append("tool"))
    assert isinstance(refused.value.error, BackendError)
    assert ran == []


@pytest.mark.timeout(30)
def test_a_hanging_sync_backend_is_bounded_by_decision_timeout() -> None:
    backend = HangsSync()
    client = Client(backend, decision_timeout=0.2)
    ran: list[int] = []

    @client.intercept(risk_level="low")
    def tool() -> None:
        ran.append(1)

    try:
        with pytest.raises(BackendError, match="did not answer within"):
            tool()
        with pytest.raises(BackendError, match="did not answer within"), client.guard(tool="t"):
            ran.append(2)
        with pytest.raises(BackendError, match="did not answer within"):
            client.decide(tool="t")
    finally:
        backend.release.set()
    assert ran == []


@pytest.mark.timeout(60)
def test_the_body_gets_the_arguments_the_reviewer_approved(tmp_path) -> None:
    backend = LocalBackend(store=MemoryStore())
    client = Client(backend, approval_timeout=20)
    paid: list[dict[str, Any]] = []

    @client.intercept(risk_level="high", capture_arguments=True)
    def pay(payment: dict[str, Any]) -> None:
        paid.append(payment)

    payment = {"to": "alice", "amount": 10}
    worker = threading.Thread(target=pay, args=(payment,))
    worker.start()
    while not backend.pending():
        time.sleep(0.01)
    pending = backend.pending()[0]
    payment.update(to="mallory", amount=1_000_000)  # after the digest, before the body
    backend.approve(pending.approval_id, reviewer="alice-reviewer")
    worker.join(30)
    assert paid == [{"to": "alice", "amount": 10}]


class Account:
    """An argument that cannot be deep-copied (it holds a lock)."""

    def __init__(self, owner: str) -> None:
        self.lock = threading.Lock()
        self.owner = owner

    def __repr__(self) -> str:
        return f"Account({self.owner})"


@pytest.mark.timeout(60)
def test_arguments_that_cannot_be_copied_are_checked_again_before_running() -> None:
    backend = LocalBackend(store=MemoryStore())
    client = Client(backend, approval_timeout=20)
    ran: list[str] = []
    errors: list[BaseException] = []

    @client.intercept(risk_level="high")
    def close(target: Account) -> None:
        ran.append(target.owner)

    def call() -> None:
        try:
            close(account)
        except BaseException as error:
            errors.append(error)

    account = Account("alice")
    worker = threading.Thread(target=call)
    worker.start()
    while not backend.pending():
        time.sleep(0.01)
    account.owner = "mallory"  # after the decision, before the body
    backend.approve(backend.pending()[0].approval_id, reviewer="reviewer")
    worker.join(30)
    assert ran == []
    assert len(errors) == 1
    assert isinstance(errors[0], Blocked)
    assert "changed after they were decided" in str(errors[0])


def test_uncopyable_arguments_that_did_not_change_run() -> None:
    client = Client(LocalBackend(store=MemoryStore()))
    ran: list[str] = []

    @client.intercept(risk_level="low")
    def close(target: Account) -> None:
        ran.append(target.owner)

    close(Account("alice"))
    assert ran == ["alice"]


@pytest.mark.timeout(60)
def test_uncopyable_arguments_are_checked_again_with_the_run_context_they_were_decided_in() -> None:
    backend = LocalBackend(store=MemoryStore())
    client = Client(backend, agent_id="agent-7")
    ran: list[str] = []

    @client.intercept(risk_level="low")
    def close(target: Account) -> None:
        ran.append(target.owner)

    close(Account("alice"))  # its digest covers the client's agent id: checked the same way
    assert ran == ["alice"]
    (decision,) = backend.store.list()
    assert backend.store.get_action(decision.decision_id).agent_id == "agent-7"
