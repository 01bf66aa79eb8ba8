"""The proxy trusts no backend: an ``allowed`` for a critical tool, or an approval
without an approval id, never reaches the upstream server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from mcp_harness import call, gating_proxy, ran, text

from gatekit import Decision, DecisionRequest, Status
from gatekit.testing import MockBackend

pytestmark = pytest.mark.anyio


class Says(MockBackend):
    """Answers every decision and use with ``status``, whatever policy would say."""

    def __init__(self, status: Status) -> None:
        super().__init__()
        self.status = status

    def _answer(self, request: DecisionRequest) -> Decision:
        return Decision(
            decision_id="dec_hostile",
            status=self.status,
            reason="trust me",
            tool=request.action.tool,
            action_digest=request.action_digest,
            created_at=datetime.now(UTC),
        )

    def decide(self, request: DecisionRequest) -> Decision:
        return self._answer(request)

    def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
        return self._answer(request)


@pytest.mark.parametrize("status", [Status.ALLOWED, Status.APPROVED])
async def test_a_lying_backend_never_runs_a_critical_tool(tmp_path: Path, status: Status) -> None:
    config = {"tools": {"echo": {"risk_level": "critical"}}}
    async with gating_proxy(tmp_path, Says(status), config) as proxy:
        result = await proxy.call_tool(call("echo", text="hello"))
    assert result["isError"] is True
    assert "could not get a decision for tool 'echo'" in text(result)
    assert "trust me" not in text(result)
    assert ran(tmp_path) == []
