"""No valid decision, no run: every failure path, sync and async."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import anyio
import pytest

from gatekit import (
    Action,
    BackendError,
    Client,
    Decision,
    DecisionRequest,
    GatekitError,
    LocalBackend,
    Status,
    ValidationError,
)
from gatekit.testing import MockBackend
from tests.gates import GatedTool


class AnswersWith(LocalBackend):
    """A backend whose decide() returns whatever it is given, valid or not."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer

    def decide(self, request: DecisionRequest) -> Any:
        return self.answer(request) if callable(self.answer) else self.answer


class Hangs(LocalBackend):
    """A backend that never answers in time."""

    async def adecide(self, request: DecisionRequest) -> Decision:
        await anyio.sleep(30)
        raise AssertionError("unreachable")


def decision_for_other_action(request: DecisionRequest) -> Decision:
    return Decision(
        decision_id="d",
        status=Status.ALLOWED,
        reason="ok",
        tool=request.action.tool,
        action_digest=Action(tool="something-else").digest(),
        created_at=datetime.now(UTC),
    )


@pytest.mark.parametrize(
    "failure",
    [
        RuntimeError("engine down"),
        TimeoutError("read timed out"),
        OSError("disk gone"),
        KeyError("missing"),
    ],
    ids=["error", "timeout", "oserror", "keyerror"],
)
def test_backend_raising_never_runs_the_body(kind: str, failure: Exception) -> None:
    backend = MockBackend(default="allow")
    backend.fail_with = failure
    tool = GatedTool(kind, backend)
    with pytest.raises(BackendError, match=type(failure).__name__):
        tool.call(1)
    assert tool.body_calls == []
    assert len(backend.requests) == 1


@pytest.mark.parametrize(
    "garbage",
    [None, {"status": "allowed"}, "allowed", True, decision_for_other_action],
    ids=["none", "dict", "string", "bool", "other-action"],
)
def test_backend_returning_garbage_never_runs_the_body(kind: str, garbage: Any) -> None:
    tool = GatedTool(kind, AnswersWith(garbage))
    with pytest.raises(BackendError):
        tool.call(1)
    assert tool.body_calls == []


def test_backend_timing_out_never_runs_the_body() -> None:
    tool = GatedTool("async", Hangs(), client_options={"decision_timeout": 0.05})
    with pytest.raises(BackendError, match="did not answer"):
        tool.call(1)
    assert tool.body_calls == []


def test_guard_body_never_runs_when_the_backend_fails(kind: str) -> None:
    backend = MockBackend()
    backend.fail_with = RuntimeError("engine down")
    tool = GatedTool(kind, backend)
    with pytest.raises(BackendError):
        tool.guard(tool="t", risk_level="low")
    assert tool.body_calls == []


def test_consume_failure_never_runs_the_body(kind: str) -> None:
    class ConsumeBreaks(LocalBackend):
        def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
            raise ConnectionError("lost the store")

        async def aconsume(self, decision_id: str, request: DecisionRequest) -> Decision:
            raise ConnectionError("lost the store")

    tool = GatedTool(
        kind, ConsumeBreaks(), intercept_options={"risk_level": "low"}, client_options={}
    )
    with pytest.raises(BackendError, match="ConnectionError"):
        tool.guard(tool="t", risk_level="low", idempotency_key="once")
    assert tool.body_calls == []


def test_fail_open_is_explicit_and_visible(kind: str) -> None:
    backend = MockBackend()
    backend.fail_with = RuntimeError("engine down")
    tool = GatedTool(kind, backend, client_options={"fail_mode": "open"})
    decision = tool.guard(tool="t", risk_level="low")
    assert decision.failed_open
    assert decision.allowed
    assert "fail_mode='open'" in decision.reason
    assert [c.name for c in decision.checks] == ["backend.failure"]
    assert len(tool.body_calls) == 1


def test_fail_open_does_not_override_a_real_denial(kind: str) -> None:
    tool = GatedTool(kind, MockBackend(default="block"), client_options={"fail_mode": "open"})
    with pytest.raises(Exception, match="mock verdict: block"):
        tool.call()
    assert tool.body_calls == []


class BadConsume(LocalBackend):
    """Approves in decide, then answers consume with something that must not run."""

    def __init__(self, answer: Any) -> None:
        super().__init__()
        self.answer = answer

    def consume(self, decision_id: str, request: DecisionRequest) -> Any:
        decision = self.get_decision(decision_id)
        return self.answer(decision) if callable(self.answer) else self.answer

    async def aconsume(self, decision_id: str, request: DecisionRequest) -> Any:
        return self.consume(decision_id, request)


@pytest.mark.parametrize(
    "answer",
    [
        None,
        lambda d: d.model_copy(update={"status": Status.EXPIRED}),
        lambda d: d.model_copy(update={"action_digest": "0" * 64}),
    ],
    ids=["none", "expired", "other-action"],
)
def test_a_bad_consume_answer_never_runs_the_body(kind: str, answer: Any) -> None:
    tool = GatedTool(kind, BadConsume(answer))
    with pytest.raises(GatekitError):
        tool.guard(tool="t", risk_level="low", idempotency_key="once")
    assert tool.body_calls == []


def test_fail_open_never_overrides_what_the_client_found_blocking(kind: str) -> None:
    backend = MockBackend()
    backend.fail_with = RuntimeError("engine down")
    tool = GatedTool(kind, backend, client_options={"fail_mode": "open", "dlp_mode": "block"})
    with pytest.raises(BackendError):
        tool.guard(tool="t", risk_level="low", arguments={"key": "AKIAIOSFODNN7EXAMPLE"})
    assert tool.body_calls == []


def test_a_hand_made_request_is_refused_so_dlp_cannot_be_skipped() -> None:
    request = DecisionRequest.for_action(Action(tool="t", arguments={"to": "a@b.example"}))
    with pytest.raises(ValidationError, match=r"client\.prepare"):
        Client(MockBackend()).decide(request)
