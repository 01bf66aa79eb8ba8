"""Outcome reports go out after the answer, in order, whatever one of them does."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from gatekit_mcp import ProxyConfig, ToolGate, wait_for_reports
from gatekit_mcp._compat import ToolCall
from gatekit_mcp.reports import OutcomeReports

from gatekit import AsyncClient, Client, Outcome
from gatekit.testing import MockBackend

pytestmark = pytest.mark.anyio


class HeldReports(MockBackend):
    """Reports wait until the test lets them through."""

    def __init__(self) -> None:
        super().__init__(default="allow")
        self.let_through = threading.Event()

    def report(self, decision_id: str, outcome: Outcome) -> None:
        assert self.let_through.wait(10), "the test never let the report through"
        super().report(decision_id, outcome)


class BrokenReports(MockBackend):
    def report(self, decision_id: str, outcome: Outcome) -> None:
        raise RuntimeError("audit store unavailable")


def echo_call() -> ToolCall:
    return ToolCall(name="echo", arguments={"text": "hi"}, client_name="test-host")


async def test_the_answer_does_not_wait_for_its_outcome_report() -> None:
    backend = HeldReports()
    gate = ToolGate(AsyncClient(backend), ProxyConfig(), server_name="srv")
    ran: list[str] = []

    async def run() -> dict[str, Any]:
        ran.append("echo")
        return {"content": [{"type": "text", "text": "hi"}], "isError": False}

    result = await gate.call(echo_call(), run)  # returns while its report is held
    decision_id = backend.store.list()[0].decision_id
    assert result["content"][0]["text"] == "hi"
    assert ran == ["echo"]
    assert backend.outcome(decision_id) is None
    backend.let_through.set()
    assert wait_for_reports()
    outcome = backend.outcome(decision_id)
    assert outcome is not None
    assert outcome.status == "success"


async def test_a_failed_call_is_reported_as_an_error() -> None:
    backend = MockBackend(default="allow")
    gate = ToolGate(AsyncClient(backend), ProxyConfig(), server_name="srv")

    async def run() -> dict[str, Any]:
        raise OSError("the upstream went away")

    with pytest.raises(OSError, match="went away"):
        await gate.call(echo_call(), run)
    assert wait_for_reports()
    outcome = backend.outcome(backend.store.list()[0].decision_id)
    assert outcome is not None
    assert outcome.status == "error"


def test_reports_go_out_in_order_and_a_failing_one_stops_none_after_it() -> None:
    queue = OutcomeReports(batch_delay=0.001)
    broken, working = BrokenReports(default="allow"), MockBackend(default="allow")
    broken_client, client = Client(broken), Client(working)
    failing = broken_client.decide(tool="echo", risk_level="low")
    decisions = [client.decide(tool="echo", risk_level="low") for _ in range(5)]
    queue.put(broken_client, failing, Outcome(status="success"))
    for decision in decisions:
        for step in range(10):  # the last one put is the one that stands
            queue.put(client, decision, Outcome(status="success", detail=str(step)))
    assert queue.wait(10)
    outcomes = [working.outcome(decision.decision_id) for decision in decisions]
    assert [o.detail if o is not None else None for o in outcomes] == ["9"] * 5


def test_a_report_after_a_quiet_spell_wakes_the_thread() -> None:
    queue = OutcomeReports(batch_delay=0.001)
    backend = MockBackend(default="allow")
    client = Client(backend)
    decision = client.decide(tool="echo", risk_level="low")
    for step in ("first", "after a quiet spell"):
        queue.put(client, decision, Outcome(status="success", detail=step))
        assert queue.wait(10)
        outcome = backend.outcome(decision.decision_id)
        assert outcome is not None
        assert outcome.detail == step
        time.sleep(0.2)  # past QUIET_LOOKS looks at an empty queue: the thread sleeps
