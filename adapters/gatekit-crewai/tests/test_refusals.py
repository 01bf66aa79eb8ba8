"""Every gatekit refusal reaches the agent as the kit's ``Refusal`` says it, and nothing more.

A backend that decides each call, then raises the error the test chose, stands
in for the engine; the tool, the hooks and crewai's hook runners are real.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from crewai.hooks import ToolCallHookContext
from crewai.hooks.tool_hooks import run_after_tool_call_hooks, run_before_tool_call_hooks
from crewai.tools import BaseTool, tool
from gatekit_crewai import GatekitToolFailure, install_hooks, secure_crewai_tool

from gatekit import (
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalTimeout,
    BackendError,
    Blocked,
    Client,
    Decision,
    DecisionRequest,
    PendingReview,
    RateLimited,
    Rejected,
    Status,
    ValidationError,
)
from gatekit.adapters import Refusal
from gatekit.testing import MockBackend

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai")]

TOOL = "delete_records"
ARGUMENTS = {"table": "customers"}
SECRET = "secret internal detail"

MakeError = Callable[[Decision], Exception]


def with_status(decision: Decision, status: Status, **changes: Any) -> Decision:
    return decision.model_copy(update={"status": status, **changes})


# (what the backend raises, given the decision it made for the call; the refusal code)
CASES: list[tuple[MakeError, str]] = [
    (lambda d: Blocked(with_status(d, Status.BLOCKED), "customers are never deleted"), "blocked"),
    (
        lambda d: RateLimited(
            with_status(d, Status.BLOCKED, retry_after=30.0), "10 deletions per minute"
        ),
        "rate_limited",
    ),
    (lambda d: PendingReview(d), "pending_review"),
    (lambda d: Rejected(with_status(d, Status.REJECTED), "rejected by bob: not today"), "rejected"),
    (lambda d: ApprovalTimeout(d, "no review within the allowed time"), "approval_timeout"),
    (lambda d: ApprovalExpired(with_status(d, Status.EXPIRED)), "expired"),
    (lambda d: ApprovalConsumed(with_status(d, Status.APPROVED)), "approval_consumed"),
    (lambda d: BackendError(SECRET), "no_decision"),
    (
        lambda d: ValidationError("arguments.table is not allowed", field="arguments"),
        "invalid_call",
    ),
]
CASE_IDS = [code for _, code in CASES]


class RefusingBackend(MockBackend):
    """Decides every call as "review" (so there is an approval id), then raises."""

    def __init__(self, make_error: MakeError) -> None:
        super().__init__(default="review")
        self.make_error = make_error
        self.raised: list[Exception] = []

    def decide(self, request: DecisionRequest) -> Decision:
        error = self.make_error(super().decide(request))
        self.raised.append(error)
        raise error


def delete_records(ran: list[str]) -> BaseTool:
    @tool(TOOL)
    def delete(table: str) -> str:
        """Delete every record of a table."""
        ran.append(table)
        return f"deleted {table}"

    return delete


async def call_gated_tool(tool: BaseTool, path: str) -> Any:
    if path == "sync":
        return tool.run(**ARGUMENTS)
    return await tool.arun(**ARGUMENTS)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("path", ["sync", "async"])
@pytest.mark.parametrize(("make_error", "code"), CASES, ids=CASE_IDS)
async def test_a_gated_tool_refuses_with_the_kits_refusal(
    make_error: MakeError, code: str, path: str
) -> None:
    backend = RefusingBackend(make_error)
    ran: list[str] = []
    gated = secure_crewai_tool(delete_records(ran), client=Client(backend), risk_level="low")

    failure = await call_gated_tool(gated, path)

    assert ran == []
    [error] = backend.raised
    expected = Refusal.of(TOOL, error)
    assert isinstance(failure, GatekitToolFailure)
    assert failure.message == expected.message
    assert failure.code == f"gatekit.{code}" == f"gatekit.{expected.code}"
    assert failure.retryable is expected.retryable
    assert failure.details["retry_after"] == expected.retry_after
    assert failure.details["approval_id"] == expected.approval_id
    agent_sees = gated.format_output_for_agent(failure)
    assert agent_sees == f"{expected.message} (code: gatekit.{code})"
    assert SECRET not in agent_sees
    assert SECRET not in failure.model_dump_json()


@pytest.mark.parametrize(("make_error", "code"), CASES, ids=CASE_IDS)
def test_the_hooks_refuse_with_the_same_text(make_error: MakeError, code: str) -> None:
    backend = RefusingBackend(make_error)
    ran: list[str] = []
    delete = delete_records(ran)
    install_hooks(Client(backend), default={"risk_level": "low"})
    tool_input = dict(ARGUMENTS)

    blocked = run_before_tool_call_hooks(
        ToolCallHookContext(tool_name=TOOL, tool_input=tool_input, tool=delete.to_structured_tool())
    )
    agent_sees = run_after_tool_call_hooks(
        ToolCallHookContext(
            tool_name=TOOL,
            tool_input=tool_input,
            tool=delete.to_structured_tool(),
            tool_result=f"Tool execution blocked by hook. Tool: {TOOL}",
        )
    )

    assert blocked is True
    [error] = backend.raised
    assert agent_sees == f"{Refusal.of(TOOL, error).message} (code: gatekit.{code})"
    assert SECRET not in agent_sees


async def test_retry_after_reaches_the_agent() -> None:
    limited = CASES[1][0]
    gated = secure_crewai_tool(
        delete_records([]), client=Client(RefusingBackend(limited)), risk_level="low"
    )

    failure = gated.run(**ARGUMENTS)

    assert isinstance(failure, GatekitToolFailure)
    assert failure.details["retry_after"] == 30.0
    assert failure.refusal.retry_after == 30.0
    assert failure.retryable
    assert "(retry after 30 s)" in gated.format_output_for_agent(failure)
