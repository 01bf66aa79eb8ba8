"""One refusal, every framework: each gatekit error reaches the model as the same
code and message through LangChain, CrewAI and MCP, a rate limit says when to
retry, and a backend's own words never reach the model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from crewai.tools import tool as crewai_tool_factory
from gatekit_crewai import GatekitToolFailure, secure_crewai_tool
from gatekit_langchain import secure_langchain_tool
from gatekit_mcp import McpToolBoundary
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import tool as langchain_tool_factory

from gatekit import (
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalTimeout,
    BackendError,
    Blocked,
    Client,
    Decision,
    DecisionRequest,
    GatekitError,
    PendingReview,
    RateLimited,
    Rejected,
    Status,
    ValidationError,
)
from gatekit.adapters import Refusal
from gatekit.testing import MockBackend

TOOL = "wipe_disk"
SECRET = "secret internal detail at 10.0.0.3"


def _decision(status: Status, reason: str, **fields: Any) -> Decision:
    return Decision(
        decision_id="dec_everywhere",
        status=status,
        reason=reason,
        tool=TOOL,
        action_digest="0" * 64,
        created_at=datetime.now(UTC),
        **fields,
    )


ERRORS: dict[str, GatekitError] = {
    "blocked": Blocked(_decision(Status.BLOCKED, "disks are never wiped")),
    "rate_limited": RateLimited(_decision(Status.BLOCKED, "3 wipes a day", retry_after=42.0)),
    "pending_review": PendingReview(
        _decision(Status.PENDING_REVIEW, "needs a human", approval_id="apr_1")
    ),
    "rejected": Rejected(_decision(Status.REJECTED, "rejected by bob: not today")),
    "approval_timeout": ApprovalTimeout(
        _decision(Status.PENDING_REVIEW, "nobody answered", approval_id="apr_2")
    ),
    "expired": ApprovalExpired(_decision(Status.EXPIRED, "the approval window closed")),
    "approval_consumed": ApprovalConsumed(_decision(Status.APPROVED, "already used")),
    "invalid_call": ValidationError("arguments.path is not allowed", field="arguments"),
    "no_decision": BackendError(SECRET),
}


class Raises(MockBackend):
    """A backend whose every decision is the chosen error."""

    def __init__(self, error: GatekitError) -> None:
        super().__init__()
        self.error = error

    def decide(self, request: DecisionRequest) -> Decision:
        raise self.error


def _wipe(path: str) -> str:
    """Erase a disk."""
    raise AssertionError("a refused tool must never run")


def through_langchain(client: Client) -> str:
    gated = secure_langchain_tool(langchain_tool_factory(TOOL)(_wipe), client=client)
    message = gated.invoke(ToolCall(name=TOOL, args={"path": "/"}, id="c1", type="tool_call"))
    assert isinstance(message, ToolMessage) and message.status == "error"
    return str(message.content)


def through_crewai(client: Client) -> str:
    inner = crewai_tool_factory(TOOL)(_wipe)
    failure = secure_crewai_tool(inner, client=client)._run(path="/")
    assert isinstance(failure, GatekitToolFailure)
    return failure.message


def through_mcp(client: Client) -> str:
    boundary = McpToolBoundary(server_name="disks", client=client, on_denied="message")
    result = boundary.invoke(tool_name=TOOL, arguments={"path": "/"}, handler=lambda a: _wipe("/"))
    assert getattr(result, "isError", False)
    return str(result.content[0].text)  # type: ignore[union-attr]


ADAPTERS: dict[str, Callable[[Client], str]] = {
    "langchain": through_langchain,
    "crewai": through_crewai,
    "mcp": through_mcp,
}


@pytest.mark.parametrize("adapter", list(ADAPTERS))
@pytest.mark.parametrize("code", list(ERRORS))
def test_every_adapter_tells_the_model_the_same_refusal(adapter: str, code: str) -> None:
    error = ERRORS[code]
    seen = ADAPTERS[adapter](Client(Raises(error)))
    expected = Refusal.of(TOOL, error)
    if code == "no_decision":  # the client wraps what a backend raises: same words, same code
        expected = Refusal.of(TOOL, BackendError("wrapped"))
    assert expected.code == code
    assert seen == expected.message
    assert SECRET not in seen
    assert "10.0.0.3" not in seen
    if code == "rate_limited":
        assert "retry after 42 s" in seen
