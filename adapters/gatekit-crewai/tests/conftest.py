"""Test setup for gatekit-crewai.

crewai's environment (no network, a temporary home, no first-run prompt) is
fixed by the workspace's root conftest.py, before any test module imports crewai.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from crewai.tools import BaseTool
from gatekit_crewai import uninstall_hooks
from pydantic import Field

from gatekit import Client, DecisionRequest, LocalBackend, Verdict
from gatekit.policy import Evaluation


class ScriptedLLM(BaseLLM):
    """A crewai LLM that answers from a script, never from the network.

    ``native=True`` makes crewai use native function calling: a scripted answer
    that is a list of OpenAI-style tool-call dicts is returned as tool calls.
    Every call's messages are kept in ``seen``.
    """

    script: list[Any]
    native: bool = False
    seen: list[list[dict[str, Any]]] = Field(default_factory=list)

    def call(
        self,
        messages: Any,
        tools: Any = None,
        callbacks: Any = None,
        available_functions: Any = None,
        from_task: Any = None,
        from_agent: Any = None,
        response_model: Any = None,
    ) -> Any:
        self.seen.append([dict(m) for m in messages])
        if not self.script:
            return "Thought: nothing left to do\nFinal Answer: out of script"
        return self.script.pop(0)

    def supports_function_calling(self) -> bool:
        return self.native

    def get_input_tokens_count(
        self, messages: Any, tools: Any = None, response_model: Any = None
    ) -> int:
        return 1  # no tokenizer download, no size warnings

    def get_context_window_size(self) -> int:
        return 1_000_000

    def tool_results(self) -> list[str]:
        """What the model was told about its tool calls, in order (native and ReAct)."""
        last = self.seen[-1]
        native = [str(m["content"]) for m in last if m.get("role") == "tool"]
        react = [
            str(m["content"]).split("Observation:", 1)[1].strip()
            for m in last
            if m.get("role") == "assistant" and "Observation:" in str(m.get("content"))
        ]
        return native or react


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def react_action(name: str, arguments: str) -> str:
    return f"Thought: I should use {name}\nAction: {name}\nAction Input: {arguments}"


@dataclass
class ToolVerdicts:
    """A test policy for the real engine: a verdict per tool name, allow otherwise."""

    verdicts: dict[str, Verdict] = field(default_factory=dict)

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        verdict = self.verdicts.get(request.action.tool, Verdict.ALLOW)
        reason = f"test policy says {verdict.value} for {request.action.tool}"
        return Evaluation(verdict, reason, (f"test.{request.action.tool}.{verdict.value}",))


def run_crew(llm: ScriptedLLM, tools: list[BaseTool]) -> str:
    agent = Agent(role="Operator", goal="Do the task", backstory="Careful.", llm=llm, tools=tools)
    task = Task(description="Handle the request.", expected_output="A summary", agent=agent)
    return str(Crew(agents=[agent], tasks=[task]).kickoff().raw)


@pytest.fixture(autouse=True)
def _no_hooks_left() -> Iterator[None]:
    yield
    uninstall_hooks()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def engine() -> LocalBackend:
    """The real embedded engine with a per-tool test policy (see ``ToolVerdicts``)."""
    return LocalBackend(policy=ToolVerdicts())


@pytest.fixture
def engine_client(engine: LocalBackend) -> Client:
    return Client(engine, approval_timeout=20)


class Reviewer:
    """A human reviewer in a thread: decides the first pending approval it sees."""

    def __init__(self, backend: LocalBackend, approve: bool) -> None:
        self.backend, self.approve = backend, approve
        self.decided: list[str] = []
        self._thread = threading.Thread(target=self._review, daemon=True)

    def __enter__(self) -> Reviewer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._thread.join(timeout=30)

    def _review(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for pending in self.backend.pending():
                assert pending.approval_id is not None
                if self.approve:
                    self.backend.approve(pending.approval_id, reviewer="alice")
                else:
                    self.backend.reject(pending.approval_id, reviewer="alice", comment="too risky")
                self.decided.append(pending.approval_id)
                return
            time.sleep(0.02)


@pytest.fixture
def reviewer() -> Callable[[LocalBackend, bool], Reviewer]:
    return Reviewer


@pytest.fixture
def crew_kit() -> Any:
    """The helpers end-to-end tests need, as one object (conftest is not importable)."""

    class Kit:
        LLM = ScriptedLLM
        tool_call = staticmethod(tool_call)
        react_action = staticmethod(react_action)
        run_crew = staticmethod(run_crew)
        ToolVerdicts = ToolVerdicts

    return Kit
