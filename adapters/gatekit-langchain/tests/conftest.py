"""Shared pieces for the LangChain adapter tests: a real engine, a reviewer, tools that record."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping

import pytest

from gatekit import DecisionRequest, LocalBackend, Verdict
from gatekit.backends import ReviewBackend
from gatekit.policy import Evaluation


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # LangGraph runs on asyncio


class ByToolPolicy:
    """A policy with one verdict per tool name (the engine still applies its risk floor)."""

    def __init__(self, verdicts: Mapping[str, str], default: str = "allow") -> None:
        self.verdicts = {tool: Verdict(v) for tool, v in verdicts.items()}
        self.default = Verdict(default)

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        tool = request.action.tool
        verdict = self.verdicts.get(tool, self.default)
        return Evaluation(verdict, f"test policy says {verdict.value} for {tool}", (f"t.{tool}",))


@pytest.fixture
def engine() -> Iterator[LocalBackend]:
    """The real embedded engine with the policy the agent tests use."""
    backend = LocalBackend(
        policy=ByToolPolicy({"wipe_disk": "block", "send_email": "review", "transfer": "review"})
    )
    yield backend
    backend.close()


class Reviewer:
    """A human reviewer in a thread: decides every pending approval, by tool name."""

    def __init__(self, backend: ReviewBackend, verdicts: Mapping[str, str]) -> None:
        self.backend = backend
        self.verdicts = dict(verdicts)
        self.decided: list[tuple[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(0.01):
            for decision in self.backend.pending():
                verdict = self.verdicts.get(decision.tool)
                if verdict is None or decision.approval_id is None:
                    continue
                review = self.backend.approve if verdict == "approve" else self.backend.reject
                review(decision.approval_id, reviewer="rita", comment=f"{verdict} {decision.tool}")
                self.decided.append((decision.tool, verdict))

    def start(self) -> Reviewer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@pytest.fixture
def reviewer(engine: LocalBackend) -> Iterator[Callable[..., Reviewer]]:
    """Start a reviewer thread: ``reviewer({"send_email": "approve"})``; stopped at teardown."""
    started: list[Reviewer] = []

    def start(verdicts: Mapping[str, str], backend: ReviewBackend | None = None) -> Reviewer:
        started.append(Reviewer(backend or engine, verdicts).start())
        return started[-1]

    yield start
    for one in started:
        one.stop()
