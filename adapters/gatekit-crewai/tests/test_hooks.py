"""Unit tests of the global hooks, driven through crewai's own hook runners."""

from __future__ import annotations

import math
from typing import Any

import pytest
from crewai import Agent
from crewai.hooks import (
    ToolCallHookContext,
    get_after_tool_call_hooks,
    get_before_tool_call_hooks,
)
from crewai.hooks.tool_hooks import run_after_tool_call_hooks, run_before_tool_call_hooks
from crewai.tools import tool
from crewai.tools.structured_tool import CrewStructuredTool
from gatekit_crewai import install_hooks, secure_crewai_tool, uninstall_hooks

import gatekit
from gatekit import Client, Status
from gatekit.testing import MockBackend

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai")

BLOCKED_BY_HOOK = "Tool execution blocked by hook. Tool: wire_money"


@tool("Wire money")
def wire_money(amount: float, to: str) -> str:
    """Send money to an account."""
    return f"sent {amount} to {to}"


def call(tool_input: dict[str, Any], structured: CrewStructuredTool | None = None) -> bool:
    """What crewai does before running a tool: True means the hooks blocked it."""
    context = ToolCallHookContext(
        tool_name="wire_money",
        tool_input=tool_input,
        tool=structured or wire_money.to_structured_tool(),  # type: ignore[arg-type]
    )
    return run_before_tool_call_hooks(context)


def finish(tool_input: dict[str, Any], result: str, raw: Any = None) -> str | None:
    """What crewai does after the call (or the block): the result the agent will see."""
    context = ToolCallHookContext(
        tool_name="wire_money",
        tool_input=tool_input,
        tool=wire_money.to_structured_tool(),
        tool_result=result,
        raw_tool_result=result if raw is None else raw,
    )
    return run_after_tool_call_hooks(context)


def test_install_registers_two_hooks_and_uninstall_removes_them() -> None:
    before, after = len(get_before_tool_call_hooks()), len(get_after_tool_call_hooks())

    install_hooks(Client(MockBackend()), default={"risk_level": "low"})
    install_hooks(Client(MockBackend()), default={"risk_level": "low"})  # replaces, not adds

    assert len(get_before_tool_call_hooks()) == before + 1
    assert len(get_after_tool_call_hooks()) == after + 1
    assert uninstall_hooks() is True
    assert uninstall_hooks() is False
    assert (len(get_before_tool_call_hooks()), len(get_after_tool_call_hooks())) == (before, after)


def test_an_allowed_call_proceeds_and_its_outcome_is_recorded() -> None:
    backend = MockBackend()
    install_hooks(Client(backend), default={"risk_level": "low", "operation_class": "financial"})
    tool_input = {"amount": 10.0, "to": "ACME"}

    assert call(tool_input) is False
    assert finish(tool_input, "sent 10.0 to ACME") == "sent 10.0 to ACME"

    [decision] = backend.store.list()
    assert decision.status is Status.ALLOWED
    action = backend.requests[0].action
    assert (action.tool, action.arguments) == ("Wire money", tool_input)
    assert action.operation_class.value == "financial"
    outcome = backend.outcome(decision.decision_id)  # type: ignore[attr-defined]
    assert outcome is not None
    assert outcome.status == "success"


def test_a_blocked_call_is_blocked_and_the_agent_gets_the_reason() -> None:
    backend = MockBackend(verdicts={"Wire money": "block"})
    install_hooks(Client(backend), default={"risk_level": "low"})
    tool_input = {"amount": 10.0, "to": "ACME"}

    assert call(tool_input) is True
    assert finish(tool_input, BLOCKED_BY_HOOK) == (
        "gatekit did not run tool 'Wire money': blocked by policy: mock verdict: block"
        " (code: gatekit.blocked)"
    )


class ExplodingClient(Client):
    """A client that fails in a way gatekit itself does not anticipate."""

    def decide(self, *args: Any, **kwargs: Any) -> Any:
        raise KeyError("surprise")


def crash_backend() -> tuple[Client, dict[str, Any]]:
    backend = MockBackend()
    backend.fail_with = RuntimeError("database is down")
    return Client(backend), {"amount": 1.0, "to": "ACME"}


def unexpected_error() -> tuple[Client, dict[str, Any]]:
    return ExplodingClient(MockBackend()), {"amount": 1.0, "to": "ACME"}


def unencodable_input() -> tuple[Client, dict[str, Any]]:
    return Client(MockBackend()), {"amount": math.inf, "to": "ACME"}


def not_a_mapping() -> tuple[Client, Any]:
    return Client(MockBackend()), ["amount", 1.0]


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (crash_backend, "gatekit.no_decision"),
        (unexpected_error, "gatekit.no_decision"),
        (unencodable_input, "gatekit.invalid_call"),
        (not_a_mapping, "gatekit.no_decision"),
    ],
)
def test_any_failure_in_the_gate_blocks_the_call(failure: Any, code: str) -> None:
    client, tool_input = failure()
    install_hooks(client, default={"risk_level": "low"})

    assert call(tool_input) is True
    message = finish(tool_input, BLOCKED_BY_HOOK)
    assert message is not None
    assert message.endswith(f"(code: {code})")
    assert "database is down" not in message
    assert "surprise" not in message


def test_review_is_waited_for_and_a_timeout_blocks() -> None:
    backend = MockBackend(verdicts={"Wire money": "review"})
    install_hooks(Client(backend), default={"risk_level": "low"}, review_timeout=0.05)
    tool_input = {"amount": 10.0, "to": "ACME"}

    assert call(tool_input) is True
    message = finish(tool_input, BLOCKED_BY_HOOK)
    assert message is not None
    assert "no reviewer decided in time" in message


def test_a_review_can_be_refused_at_once_and_runs_when_retried_after_approval() -> None:
    backend = MockBackend(verdicts={"Wire money": "review"})
    install_hooks(Client(backend), default={"risk_level": "low"}, on_review="refuse")

    first = {"amount": 10.0, "to": "ACME"}
    assert call(first) is True
    message = finish(first, BLOCKED_BY_HOOK)
    [pending] = backend.pending()
    assert pending.approval_id is not None
    assert message is not None
    assert pending.approval_id in message
    backend.approve(pending.approval_id, reviewer="bob")
    retry = {"amount": 10.0, "to": "ACME"}

    assert call(retry) is False
    assert finish(retry, "sent 10.0 to ACME") == "sent 10.0 to ACME"
    assert len(backend.store.list()) == 1  # the retry used the approved review


@pytest.mark.parametrize("name", ["Wire money", "wire_money"])
def test_per_tool_fields_replace_the_defaults_by_name_or_sanitized_name(name: str) -> None:
    backend = MockBackend()
    install_hooks(
        Client(backend),
        default={"risk_level": "low"},
        tools={name: {"risk_level": "medium", "operation_class": "financial"}},
    )

    call({"amount": 1.0, "to": "ACME"})

    action = backend.requests[0].action
    assert (action.risk_level.value, action.operation_class.value) == ("medium", "financial")
    assert action.tool == name


def test_the_agent_role_is_recorded_with_the_action(crew_kit: Any) -> None:
    backend = MockBackend()
    install_hooks(Client(backend), default={"risk_level": "low"})
    llm = crew_kit.LLM(model="scripted", script=[])
    agent = Agent(role="Treasurer", goal="Pay bills", backstory="Careful.", llm=llm)
    context = ToolCallHookContext(
        tool_name="wire_money",
        tool_input={"amount": 1.0, "to": "ACME"},
        tool=wire_money.to_structured_tool(),
        agent=agent,
    )

    run_before_tool_call_hooks(context)

    assert backend.requests[0].action.metadata == {"crewai_agent_role": "Treasurer"}


def test_gated_tools_are_left_to_their_own_gate() -> None:
    hooks_backend = MockBackend(verdicts={"Wire money": "block"})
    install_hooks(Client(hooks_backend), default={"risk_level": "low"})
    gated = secure_crewai_tool(wire_money, client=Client(MockBackend()), risk_level="low")

    assert call({"amount": 1.0, "to": "ACME"}, gated.to_structured_tool()) is False
    assert hooks_backend.requests == []


def test_invalid_fields_fail_at_install_time() -> None:
    with pytest.raises(gatekit.ValidationError, match="risk_level"):
        install_hooks(Client(MockBackend()), default={"risk_level": "extreme"})
    with pytest.raises(gatekit.ValidationError, match="operation_class"):
        install_hooks(Client(MockBackend()), tools={"x": {"operation_class": "steal"}})
    with pytest.raises(gatekit.ConfigurationError, match="on_review"):
        install_hooks(Client(MockBackend()), on_review="later")  # type: ignore[arg-type]
    assert get_before_tool_call_hooks() == []


def test_input_changed_after_the_decision_is_recorded_as_an_error() -> None:
    backend = MockBackend()
    install_hooks(Client(backend), default={"risk_level": "low"})
    tool_input = {"amount": 10.0, "to": "ACME"}

    assert call(tool_input) is False
    tool_input["to"] = "MALLORY"  # what a later hook could do
    finish(tool_input, "sent 10.0 to MALLORY")

    [decision] = backend.store.list()
    outcome = backend.outcome(decision.decision_id)  # type: ignore[attr-defined]
    assert outcome is not None
    assert (outcome.status, outcome.detail) == ("error", "tool input changed after the decision")
