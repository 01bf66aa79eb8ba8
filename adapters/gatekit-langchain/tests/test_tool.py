"""secure_langchain_tool: the gated tool looks and behaves like the inner one, and is gated."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from gatekit_langchain import GatedTool, secure_langchain_tool
from langchain.tools import InjectedState, ToolRuntime
from langchain_core.callbacks import CallbackManagerForToolRun
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import (
    BaseTool,
    InjectedToolCallId,
    StructuredTool,
    Tool,
    ToolException,
    tool,
)
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, Field

import gatekit
from gatekit import Blocked, Client, PendingReview
from gatekit.testing import MockBackend


def call(name: str, args: dict[str, Any], id: str = "call_1") -> ToolCall:
    return ToolCall(name=name, args=args, id=id, type="tool_call")


@pytest.fixture
def ran() -> list[Any]:
    return []


@pytest.fixture
def lookup(ran: list[Any]) -> BaseTool:
    @tool
    def lookup(city: str, units: str = "metric") -> str:
        """Weather for a city."""
        ran.append(("lookup", city))
        return f"sunny in {city}"

    return lookup


def test_gated_tool_is_a_base_tool_with_the_inner_face(lookup: BaseTool) -> None:
    gated = secure_langchain_tool(lookup, client=Client(MockBackend()), risk_level="low")
    assert isinstance(gated, BaseTool)
    assert isinstance(gated, GatedTool)
    assert (gated.name, gated.description) == (lookup.name, lookup.description)
    assert gated.args_schema is lookup.args_schema
    assert gated.args == lookup.args
    assert convert_to_openai_tool(gated) == convert_to_openai_tool(lookup)


def test_openai_schema_is_unchanged_for_a_tool_with_injected_arguments() -> None:
    @tool
    def note(
        text: str,
        runtime: ToolRuntime,
        call_id: Annotated[str, InjectedToolCallId],
        messages: Annotated[list[Any], InjectedState("messages")],
    ) -> str:
        """Write a note."""
        return text

    gated = secure_langchain_tool(note, client=Client(MockBackend()))
    schema = convert_to_openai_tool(gated)
    assert schema == convert_to_openai_tool(note)
    assert set(schema["function"]["parameters"]["properties"]) == {"text"}
    assert gated._injected_args_keys == note._injected_args_keys


class TicketArgs(BaseModel):
    title: str = Field(description="Short title")
    priority: int = Field(default=3, ge=1, le=5)


class TicketTool(BaseTool):
    """A class-based tool with its own schema, run_manager and async body."""

    name: str = "open_ticket"
    description: str = "Open a ticket."
    args_schema: type[BaseModel] = TicketArgs
    bodies: list[str] = Field(default_factory=list)

    def _run(
        self, title: str, priority: int = 3, run_manager: CallbackManagerForToolRun | None = None
    ) -> str:
        self.bodies.append(f"sync:{title}:{priority}:{run_manager is not None}")
        return f"ticket {title} p{priority}"

    async def _arun(self, title: str, priority: int = 3, run_manager: Any = None) -> str:
        self.bodies.append(f"async:{title}:{priority}:{run_manager is not None}")
        return f"ticket {title} p{priority}"


def test_class_based_tool_keeps_schema_and_gets_run_manager() -> None:
    inner = TicketTool()
    backend = MockBackend()
    gated = secure_langchain_tool(inner, client=Client(backend), risk_level="low")
    assert convert_to_openai_tool(gated) == convert_to_openai_tool(inner)
    message = gated.invoke(call("open_ticket", {"title": "printer", "priority": "2"}))
    assert message.content == "ticket printer p2"
    assert inner.bodies == ["sync:printer:2:True"]
    # The engine saw the validated, model-facing arguments.
    assert backend.requests[-1].action.arguments == {"title": "printer", "priority": 2}


@pytest.mark.anyio
async def test_class_based_tool_async_body() -> None:
    inner = TicketTool()
    gated = secure_langchain_tool(inner, client=Client(MockBackend()))
    message = await gated.ainvoke(call("open_ticket", {"title": "lamp"}))
    assert message.content == "ticket lamp p3"
    assert inner.bodies == ["async:lamp:3:True"]


def test_legacy_single_string_tool(ran: list[Any]) -> None:
    def shout(text: str) -> str:
        ran.append(text)
        return text.upper()

    inner = Tool(name="shout", func=shout, description="Shout.")
    backend = MockBackend()
    gated = secure_langchain_tool(inner, client=Client(backend))
    assert gated.invoke("hi") == "HI"
    assert gated.run("there") == "THERE"
    assert ran == ["hi", "there"]
    assert backend.requests[0].action.arguments == {"tool_input": "hi"}


def test_every_entry_point_runs_allowed_calls(lookup: BaseTool, ran: list[Any]) -> None:
    backend = MockBackend()
    gated = secure_langchain_tool(lookup, client=Client(backend), risk_level="low")
    assert gated.invoke({"city": "Oslo"}) == "sunny in Oslo"
    assert gated.run({"city": "Rome"}) == "sunny in Rome"
    assert gated.batch([{"city": "Lima"}, {"city": "Kyiv"}]) == ["sunny in Lima", "sunny in Kyiv"]
    message = gated.invoke(call("lookup", {"city": "Nice"}, "c9"))
    assert isinstance(message, ToolMessage)
    assert (message.content, message.tool_call_id, message.status) == (
        "sunny in Nice",
        "c9",
        "success",
    )
    assert sorted(city for _, city in ran) == ["Kyiv", "Lima", "Nice", "Oslo", "Rome"]
    assert len(backend.requests) == 5
    sent = backend.requests[-1].action
    assert (sent.tool, sent.arguments, sent.risk_level.value) == (
        "lookup",
        {"city": "Nice", "units": "metric"},
        "low",
    )
    assert sent.idempotency_key is not None
    assert sent.metadata["langchain"] == {"tool_call_id": "c9"}


@pytest.mark.anyio
async def test_every_async_entry_point_runs_allowed_calls(lookup: BaseTool, ran: list[Any]) -> None:
    backend = MockBackend()
    gated = secure_langchain_tool(lookup, client=Client(backend))
    assert await gated.ainvoke({"city": "Oslo"}) == "sunny in Oslo"
    assert await gated.arun({"city": "Rome"}) == "sunny in Rome"
    results = await gated.abatch(
        [call("lookup", {"city": "Lima"}, "a"), call("lookup", {"city": "Kyiv"}, "b")]
    )
    assert [(m.tool_call_id, m.content) for m in results] == [
        ("a", "sunny in Lima"),
        ("b", "sunny in Kyiv"),
    ]
    assert len(ran) == 4
    assert len(backend.requests) == 4


def blocked_tool(ran: list[Any], **options: Any) -> tuple[GatedTool, MockBackend]:
    @tool
    def wipe_disk(path: str) -> str:
        """Erase a disk."""
        ran.append(path)
        return "wiped"

    backend = MockBackend(verdicts={"wipe_disk": "block"})
    return secure_langchain_tool(wipe_disk, client=Client(backend), **options), backend


def test_blocked_tool_call_becomes_an_error_tool_message(ran: list[Any]) -> None:
    gated, _ = blocked_tool(ran)
    message = gated.invoke(call("wipe_disk", {"path": "/"}, "c1"))
    assert isinstance(message, ToolMessage)
    assert message.status == "error"
    assert message.tool_call_id == "c1"
    assert message.name == "wipe_disk"
    assert "did not run tool 'wipe_disk': blocked by policy: mock verdict: block" in message.content
    batch = gated.batch(
        [call("wipe_disk", {"path": "/a"}, "c2"), call("wipe_disk", {"path": "/b"}, "c3")]
    )
    assert [m.status for m in batch] == ["error", "error"]
    assert ran == []


@pytest.mark.anyio
async def test_blocked_async_calls_become_error_tool_messages(ran: list[Any]) -> None:
    gated, _ = blocked_tool(ran)
    message = await gated.ainvoke(call("wipe_disk", {"path": "/"}, "c1"))
    assert message.status == "error"
    assert "blocked by policy" in message.content
    batch = await gated.abatch([call("wipe_disk", {"path": "/a"}, "c2")])
    assert batch[0].status == "error"
    assert ran == []


def test_blocked_direct_call_without_a_tool_call_raises(ran: list[Any]) -> None:
    gated, _ = blocked_tool(ran)
    with pytest.raises(Blocked, match="mock verdict: block"):
        gated.invoke({"path": "/"})
    with pytest.raises(Blocked):
        gated.run({"path": "/"})
    with pytest.raises(Blocked):
        gated.batch([{"path": "/"}])
    with pytest.raises(Blocked):  # as another framework would call it
        gated._run(path="/")
    assert ran == []


@pytest.mark.anyio
async def test_blocked_async_direct_calls_raise(ran: list[Any]) -> None:
    gated, _ = blocked_tool(ran)
    with pytest.raises(Blocked):
        await gated.ainvoke({"path": "/"})
    with pytest.raises(Blocked):
        await gated.arun({"path": "/"})
    with pytest.raises(Blocked):
        await gated.abatch([{"path": "/"}])
    with pytest.raises(Blocked):
        await gated._arun(path="/")
    assert ran == []


def test_on_denied_raise_raises_even_for_tool_calls(ran: list[Any]) -> None:
    gated, _ = blocked_tool(ran, on_denied="raise")
    with pytest.raises(Blocked):
        gated.invoke(call("wipe_disk", {"path": "/"}))
    assert ran == []


def test_review_can_be_refused_at_once_or_waited_for(ran: list[Any]) -> None:
    @tool
    def send_email(to: str) -> str:
        """Send an email."""
        ran.append(to)
        return "sent"

    backend = MockBackend(verdicts={"send_email": "review"})
    deny = secure_langchain_tool(send_email, client=Client(backend), on_review="refuse")
    message = deny.invoke(call("send_email", {"to": "bob"}, "c1"))
    assert message.status == "error"
    assert "it waits for human review: " in message.content

    wait = secure_langchain_tool(send_email, client=Client(backend), review_timeout=0.05)
    message = wait.invoke(call("send_email", {"to": "bob"}, "c2"))
    assert message.status == "error"
    assert "no reviewer decided in time" in message.content
    with pytest.raises(PendingReview):
        deny.invoke({"to": "bob"})
    assert ran == []


def test_artifacts_and_return_direct_are_kept() -> None:
    @tool(response_format="content_and_artifact", return_direct=True)
    def fetch(url: str) -> tuple[str, dict[str, Any]]:
        """Fetch a page."""
        return "3 bytes", {"raw": b"abc".decode()}

    gated = secure_langchain_tool(fetch, client=Client(MockBackend()))
    assert gated.return_direct is True
    assert gated.response_format == "content_and_artifact"
    message = gated.invoke(call("fetch", {"url": "https://example.test"}))
    assert (message.content, message.artifact) == ("3 bytes", {"raw": "abc"})


def test_tool_error_handling_is_kept() -> None:
    def flaky(n: int) -> str:
        """Fail."""
        raise ToolException(f"broke on {n}")

    def strict(n: int) -> str:
        """Strict."""
        return str(n)

    client = Client(MockBackend())
    flaky_tool = StructuredTool.from_function(flaky, handle_tool_error=lambda e: f"handled: {e}")
    strict_tool = StructuredTool.from_function(strict, handle_validation_error="bad input")
    message = secure_langchain_tool(flaky_tool, client=client).invoke(call("flaky", {"n": 2}))
    assert (message.content, message.status) == ("handled: broke on 2", "error")
    message = secure_langchain_tool(strict_tool, client=client).invoke(call("strict", {"n": "x"}))
    assert (message.content, message.status) == ("bad input", "error")


def test_injected_tool_call_id_reaches_the_body_and_not_the_engine() -> None:
    seen: list[str] = []

    @tool
    def stamp(text: str, call_id: Annotated[str, InjectedToolCallId]) -> str:
        """Stamp."""
        seen.append(call_id)
        return text

    backend = MockBackend()
    gated = secure_langchain_tool(stamp, client=Client(backend))
    gated.invoke(call("stamp", {"text": "x"}, "call_42"))
    assert seen == ["call_42"]
    assert backend.requests[-1].action.arguments == {"text": "x"}


def test_resecuring_replaces_the_gate_instead_of_stacking_it(lookup: BaseTool) -> None:
    backend = MockBackend()
    once = secure_langchain_tool(lookup, client=Client(backend), risk_level="low")
    twice = secure_langchain_tool(once, client=Client(backend), risk_level="medium")
    assert twice.inner is lookup
    twice.invoke(call("lookup", {"city": "Oslo"}))
    assert [r.action.risk_level.value for r in backend.requests] == ["medium"]


def test_invalid_action_fields_fail_at_wrapping_time(lookup: BaseTool) -> None:
    with pytest.raises(gatekit.ValidationError, match="risk_level"):
        secure_langchain_tool(lookup, risk_level="extreme")
    with pytest.raises(gatekit.ValidationError, match="arguments"):
        secure_langchain_tool(lookup, arguments={"city": "x"})
    with pytest.raises(gatekit.ConfigurationError):
        secure_langchain_tool(lookup, on_review="sometimes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        secure_langchain_tool(lambda x: x)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_coroutine_only_tool(ran: list[Any]) -> None:
    async def alookup(city: str) -> str:
        ran.append(city)
        return f"async {city}"

    inner = StructuredTool.from_function(coroutine=alookup, name="alookup", description="Async.")
    gated = secure_langchain_tool(inner, client=Client(MockBackend()))
    assert convert_to_openai_tool(gated) == convert_to_openai_tool(inner)
    message = await gated.ainvoke(call("alookup", {"city": "Oslo"}))
    assert message.content == "async Oslo"
    assert ran == ["Oslo"]
