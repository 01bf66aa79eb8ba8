"""Helpers for testing your own gated code.

    from gatekit import Client
    from gatekit.testing import MockBackend, capture_decisions

    backend = MockBackend(verdicts={"send_email": "block"}, default="allow")
    client = Client(backend)
    with capture_decisions() as decisions:
        ...  # run code that calls gated tools
    assert [d.status for d in decisions] == [...]

``MockBackend`` answers as configured per tool (the risk floor and client-side
checks still apply, as in every engine): it is for unit tests of your code and
of adapters, not evidence that a policy works.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from gatekit import _context
from gatekit._models import Decision, DecisionRequest, Verdict
from gatekit.backends.local import LocalBackend
from gatekit.policy import Evaluation
from gatekit.store import MemoryStore

__all__ = ["MockBackend", "capture_decisions", "running"]


class _VerdictPerTool:
    def __init__(self, verdicts: dict[str, Verdict | str], default: Verdict | str) -> None:
        self.verdicts = {tool: Verdict(v) for tool, v in verdicts.items()}
        self.default = Verdict(default)

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        verdict = self.verdicts.get(request.action.tool, self.default)
        return Evaluation(verdict, f"mock verdict: {verdict.value}", (f"mock.{verdict.value}",))


class MockBackend(LocalBackend):
    """A backend whose verdict per tool is set by the test.

    ``verdicts`` maps a tool name to "allow", "review" or "block"; other tools
    get ``default``. Every request is kept in ``requests``. Set ``fail_with`` to
    an exception to make every decision fail, as a broken backend would.
    Approve or reject pending actions with ``approve``/``reject`` as a reviewer.
    """

    def __init__(
        self,
        verdicts: dict[str, Verdict | str] | None = None,
        default: Verdict | str = "allow",
        *,
        approval_ttl: float = 3600.0,
    ) -> None:
        super().__init__(
            policy=_VerdictPerTool(verdicts or {}, default),
            store=MemoryStore(),
            approval_ttl=approval_ttl,
        )
        self.requests: list[DecisionRequest] = []
        self.fail_with: BaseException | None = None

    def decide(self, request: DecisionRequest) -> Decision:
        self.requests.append(request)
        if self.fail_with is not None:
            raise self.fail_with
        return super().decide(request)


class CapturedDecisions(list[Decision]):
    """The decisions made in a ``capture_decisions()`` block, in order."""

    @property
    def last(self) -> Decision:
        return self[-1]

    def for_tool(self, tool: str) -> list[Decision]:
        return [d for d in self if d.tool == tool]


@contextmanager
def capture_decisions() -> Iterator[CapturedDecisions]:
    """Collect every decision any client returns inside the block (this context)."""
    captured = CapturedDecisions()
    with _context.listening(captured.append):
        yield captured


def running(run: _context.RunContext) -> AbstractContextManager[_context.RunContext]:
    """Make ``run`` the current agent run inside the block, as ``Gateway.run`` does."""
    return _context.run_context(run)
