"""End to end: real crewai Crews, driven by a scripted LLM, gated by the real embedded engine.

Each crew runs on crewai's native function-calling path and on its ReAct text
path. The decisions are counted in the engine's store, so a second decision
for the same call (e.g. a gate in both ``run`` and ``_run``) would show.
"""

from __future__ import annotations

from typing import Any

import pytest
from crewai import Agent, Crew, Task
from crewai.tools import BaseTool, tool
from gatekit_crewai import install_hooks, secure_crewai_tool

from gatekit import Client, Decision, LocalBackend, Status, Verdict
from gatekit.store import MemoryStore
from gatekit.testing import capture_decisions

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai")

PATHS = ["native", "react"]
WEATHER = '{"city": "Paris"}'
DELETE = '{"table": "customers"}'
ANSWER = "Paris is sunny; the deletion was refused."


def make_tools(ran: list[tuple[str, str]]) -> tuple[BaseTool, BaseTool]:
    @tool("lookup_weather")
    def lookup_weather(city: str) -> str:
        """Look up today's weather in a city."""
        ran.append(("lookup_weather", city))
        return f"sunny in {city}"

    @tool("delete_records")
    def delete_records(table: str) -> str:
        """Delete every record of a table."""
        ran.append(("delete_records", table))
        return f"deleted {table}"

    return lookup_weather, delete_records


def script(kit: Any, path: str) -> list[Any]:
    """Call the weather tool, then the delete tool, then answer."""
    if path == "native":
        return [
            [kit.tool_call("call_1", "lookup_weather", WEATHER)],
            [kit.tool_call("call_2", "delete_records", DELETE)],
            ANSWER,
        ]
    return [
        kit.react_action("lookup_weather", WEATHER),
        kit.react_action("delete_records", DELETE),
        f"Thought: I have what I need\nFinal Answer: {ANSWER}",
    ]


def decided(engine: LocalBackend) -> list[tuple[str, Status]]:
    return sorted((d.tool, d.status) for d in engine.store.list())


@pytest.mark.parametrize("path", PATHS)
def test_gated_tools_decide_each_call_once_and_blocked_bodies_never_run(
    path: str, crew_kit: Any, engine: LocalBackend, engine_client: Client
) -> None:
    engine.policy.verdicts["delete_records"] = Verdict.BLOCK  # type: ignore[attr-defined]
    ran: list[tuple[str, str]] = []
    weather, delete = make_tools(ran)
    tools = [
        secure_crewai_tool(weather, client=engine_client, risk_level="low", operation_class="read"),
        secure_crewai_tool(
            delete, client=engine_client, risk_level="low", operation_class="delete"
        ),
    ]
    llm = crew_kit.LLM(model="scripted", native=path == "native", script=script(crew_kit, path))

    with capture_decisions() as decisions:
        answer = crew_kit.run_crew(llm, tools)

    assert ran == [("lookup_weather", "Paris")]
    assert decided(engine) == [
        ("delete_records", Status.BLOCKED),
        ("lookup_weather", Status.ALLOWED),
    ]
    assert len(decisions) == 2
    weather_result, delete_result = llm.tool_results()
    assert "sunny in Paris" in weather_result
    assert "blocked by policy: test policy says block for delete_records" in delete_result
    assert answer == ANSWER


@pytest.mark.parametrize("path", PATHS)
def test_hooks_decide_each_call_of_plain_tools_once(
    path: str, crew_kit: Any, engine: LocalBackend, engine_client: Client
) -> None:
    engine.policy.verdicts["delete_records"] = Verdict.BLOCK  # type: ignore[attr-defined]
    ran: list[tuple[str, str]] = []
    install_hooks(
        engine_client,
        default={"risk_level": "low", "operation_class": "read"},
        tools={"delete_records": {"risk_level": "low", "operation_class": "delete"}},
    )
    llm = crew_kit.LLM(model="scripted", native=path == "native", script=script(crew_kit, path))

    answer = crew_kit.run_crew(llm, list(make_tools(ran)))

    assert ran == [("lookup_weather", "Paris")]
    assert decided(engine) == [
        ("delete_records", Status.BLOCKED),
        ("lookup_weather", Status.ALLOWED),
    ]
    weather_result, delete_result = llm.tool_results()
    assert "sunny in Paris" in weather_result
    assert "test policy says block for delete_records" in delete_result
    allowed = next(d for d in engine.store.list() if d.status is Status.ALLOWED)
    outcome = engine.outcome(allowed.decision_id)  # type: ignore[attr-defined]
    assert outcome is not None
    assert outcome.status == "success"
    assert answer == ANSWER


def test_hooks_leave_gated_tools_to_their_own_gate(
    crew_kit: Any, engine: LocalBackend, engine_client: Client
) -> None:
    ran: list[tuple[str, str]] = []
    weather, delete = make_tools(ran)
    install_hooks(engine_client, default={"risk_level": "low"})
    tools = [secure_crewai_tool(weather, client=engine_client, risk_level="low"), delete]
    llm = crew_kit.LLM(model="scripted", native=True, script=script(crew_kit, "native"))

    crew_kit.run_crew(llm, tools)

    assert ran == [("lookup_weather", "Paris"), ("delete_records", "customers")]
    assert decided(engine) == [
        ("delete_records", Status.ALLOWED),
        ("lookup_weather", Status.ALLOWED),
    ]


class BrokenStore(MemoryStore):
    """A store that fails as a full disk would."""

    def create(self, decision: Decision, action: Any) -> Decision:
        raise OSError("no space left on device")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("entry", ["secure_crewai_tool", "install_hooks"])
def test_a_crashing_gate_never_lets_a_tool_run_in_a_crew(
    entry: str, path: str, crew_kit: Any
) -> None:
    client = Client(LocalBackend(store=BrokenStore()))
    ran: list[tuple[str, str]] = []
    tools: list[BaseTool] = list(make_tools(ran))
    if entry == "install_hooks":
        install_hooks(client, default={"risk_level": "low"})
    else:
        tools = [secure_crewai_tool(t, client=client, risk_level="low") for t in tools]
    llm = crew_kit.LLM(model="scripted", native=path == "native", script=script(crew_kit, path))

    crew_kit.run_crew(llm, tools)

    assert ran == []
    results = llm.tool_results()
    assert len(results) == 2
    assert all("could not get a decision" in result for result in results)


@pytest.mark.parametrize("approve", [True, False])
def test_a_reviewed_call_waits_for_the_reviewer_then_runs_or_is_refused(
    approve: bool, crew_kit: Any, engine: LocalBackend, engine_client: Client, reviewer: Any
) -> None:
    ran: list[tuple[str, str]] = []
    _, delete = make_tools(ran)
    gated = secure_crewai_tool(delete, client=engine_client, risk_level="high")
    llm = crew_kit.LLM(
        model="scripted",
        native=True,
        script=[[crew_kit.tool_call("call_1", "delete_records", DELETE)], ANSWER],
    )

    with reviewer(engine, approve) as review:
        crew_kit.run_crew(llm, [gated])

    assert len(review.decided) == 1
    [decision] = engine.store.list()
    [result] = llm.tool_results()
    if approve:
        assert ran == [("delete_records", "customers")]
        assert decision.status is Status.APPROVED
        assert decision.consumed_at is not None
        assert result == "deleted customers"
    else:
        assert ran == []
        assert decision.status is Status.REJECTED
        assert "a human reviewer rejected it: rejected by alice: too risky" in result


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
@pytest.mark.parametrize("path", PATHS)
async def test_async_kickoff_is_gated_the_same_way(
    path: str, crew_kit: Any, engine: LocalBackend, engine_client: Client
) -> None:
    engine.policy.verdicts["delete_records"] = Verdict.BLOCK  # type: ignore[attr-defined]
    ran: list[tuple[str, str]] = []
    tools = [secure_crewai_tool(t, client=engine_client, risk_level="low") for t in make_tools(ran)]
    llm = crew_kit.LLM(model="scripted", native=path == "native", script=script(crew_kit, path))
    agent = Agent(role="Operator", goal="Do the task", backstory="Careful.", llm=llm, tools=tools)
    task = Task(description="Handle the request.", expected_output="A summary", agent=agent)

    output = await Crew(agents=[agent], tasks=[task]).akickoff()

    assert ran == [("lookup_weather", "Paris")]
    assert decided(engine) == [
        ("delete_records", Status.BLOCKED),
        ("lookup_weather", Status.ALLOWED),
    ]
    assert "test policy says block for delete_records" in llm.tool_results()[1]
    assert output.raw == ANSWER


@pytest.mark.parametrize("path", PATHS)
def test_a_refusal_never_becomes_the_final_answer_of_a_result_as_answer_tool(
    path: str, crew_kit: Any, engine: LocalBackend, engine_client: Client
) -> None:
    engine.policy.verdicts["delete_records"] = Verdict.BLOCK  # type: ignore[attr-defined]
    ran: list[tuple[str, str]] = []
    _, delete = make_tools(ran)
    delete.result_as_answer = True
    gated = secure_crewai_tool(delete, client=engine_client, risk_level="low")
    if path == "native":
        steps: list[Any] = [[crew_kit.tool_call("call_1", "delete_records", DELETE)], ANSWER]
    else:
        steps = [
            crew_kit.react_action("delete_records", DELETE),
            f"Thought: refused\nFinal Answer: {ANSWER}",
        ]
    llm = crew_kit.LLM(model="scripted", native=path == "native", script=steps)

    answer = crew_kit.run_crew(llm, [gated])

    assert ran == []
    assert answer == ANSWER
