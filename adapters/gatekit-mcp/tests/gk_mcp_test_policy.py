"""A tiny policy for the tests, until policy files exist in the core.

``GK_TEST_BLOCK`` / ``GK_TEST_REVIEW``: comma-separated tool names to block or
send to review; every other tool is allowed (subject to the core's risk floor).
The proxy loads it with ``--backend-factory gk_mcp_test_policy:make_backend``.
"""

from __future__ import annotations

import os

from gatekit import DecisionRequest, LocalBackend, Verdict
from gatekit.policy import Evaluation


def _names(variable: str) -> set[str]:
    return {name for name in os.environ.get(variable, "").split(",") if name}


class ToolListPolicy:
    def __init__(self, block: set[str] | None = None, review: set[str] | None = None) -> None:
        self.block = _names("GK_TEST_BLOCK") if block is None else block
        self.review = _names("GK_TEST_REVIEW") if review is None else review

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        tool = request.action.tool
        if tool in self.block:
            return Evaluation(Verdict.BLOCK, f"{tool} is not allowed for this agent", ("t.block",))
        if tool in self.review:
            return Evaluation(Verdict.REVIEW, f"{tool} needs a human", ("t.review",))
        return Evaluation(Verdict.ALLOW, "allowed by test policy", ("t.allow",))


def make_backend() -> LocalBackend:
    return LocalBackend(policy=ToolListPolicy())


def make_broken_backend() -> LocalBackend:
    """A backend that cannot decide anything (fail-closed tests)."""
    from gatekit.testing import MockBackend

    backend = MockBackend(default="allow")
    backend.fail_with = RuntimeError("decision store unavailable")
    return backend
