"""Every way gatekit refuses a tools/call reaches the model as the kit's Refusal text.

The refusal is raised by the backend behind a real client, in front of the real
upstream test server: what the model reads is exactly ``Refusal.of(tool,
error).message``, a rate limit says when to retry, and a backend's own words
stay in the log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from mcp_harness import call, gating_proxy, ran, text

from gatekit import (
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalTimeout,
    BackendError,
    Blocked,
    Decision,
    DecisionError,
    GatekitError,
    PendingReview,
    RateLimited,
    Rejected,
    Status,
    ValidationError,
)
from gatekit.adapters import Refusal
from gatekit.testing import MockBackend

pytestmark = pytest.mark.anyio

BACKEND_SECRET = "secret internal detail"


def decision(status: Status, reason: str, **fields: Any) -> Decision:
    return Decision(
        decision_id="dec_refusal_test",
        status=status,
        reason=reason,
        tool="echo",
        action_digest="0" * 64,
        created_at=datetime.now(UTC),
        **fields,
    )


ERRORS: dict[str, GatekitError] = {
    "blocked": Blocked(decision(Status.BLOCKED, "echo is off today", rule_ids=["r.echo"])),
    "rate_limited": RateLimited(decision(Status.BLOCKED, "3 echoes a minute", retry_after=42.0)),
    "pending_review": PendingReview(
        decision(Status.PENDING_REVIEW, "needs a human", approval_id="apr_pending")
    ),
    "rejected": Rejected(decision(Status.REJECTED, "rejected by bob: not now")),
    "approval_timeout": ApprovalTimeout(
        decision(Status.PENDING_REVIEW, "needs a human", approval_id="apr_slow"),
        "no review within the allowed time",
    ),
    "approval_expired": ApprovalExpired(decision(Status.EXPIRED, "the approval window closed")),
    "approval_consumed": ApprovalConsumed(
        decision(Status.APPROVED, "approved by alice", approval_id="apr_used"),
        "this decision was already used",
    ),
    "backend_error": BackendError(BACKEND_SECRET),
    "validation_error": ValidationError("text must be shorter", field="text"),
}


@pytest.mark.parametrize("error", ERRORS.values(), ids=ERRORS.keys())
async def test_the_model_reads_the_refusal_of_each_gatekit_error(
    tmp_path: Path, error: GatekitError
) -> None:
    backend = MockBackend(default="allow")
    backend.fail_with = error
    async with gating_proxy(tmp_path, backend) as proxy:
        result = await proxy.call_tool(call("echo", text="hello"))
    refusal = Refusal.of("echo", error)
    assert result["isError"] is True
    assert text(result) == refusal.message
    assert BACKEND_SECRET not in str(result)
    if isinstance(error, DecisionError):
        meta = result["_meta"]["gatekit/decision"]
        assert meta["decision_id"] == error.decision.decision_id
        assert meta["approval_id"] == error.decision.approval_id
    else:
        assert "_meta" not in result  # no decision to point to
    assert ran(tmp_path) == []


async def test_a_rate_limit_tells_the_model_when_to_retry(tmp_path: Path) -> None:
    backend = MockBackend(default="allow")
    backend.fail_with = ERRORS["rate_limited"]
    async with gating_proxy(tmp_path, backend) as proxy:
        result = await proxy.call_tool(call("echo", text="hello"))
    assert "rate limited: 3 echoes a minute (retry after 42 s)" in text(result)


async def test_a_used_approval_says_so(tmp_path: Path) -> None:
    backend = MockBackend(default="allow")
    backend.fail_with = ERRORS["approval_consumed"]
    async with gating_proxy(tmp_path, backend) as proxy:
        result = await proxy.call_tool(call("echo", text="hello"))
    assert "its approval was already used: this decision was already used" in text(result)


async def test_a_backend_failure_is_logged_not_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend = MockBackend(default="allow")
    backend.fail_with = RuntimeError(BACKEND_SECRET)
    async with gating_proxy(tmp_path, backend) as proxy:
        result = await proxy.call_tool(call("echo", text="hello"))
    assert "could not get a decision for tool 'echo'" in text(result)
    assert BACKEND_SECRET not in str(result)
    assert BACKEND_SECRET in caplog.text  # the operator can still find out why
    assert ran(tmp_path) == []
