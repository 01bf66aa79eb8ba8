"""langchain_tool: over @tool it makes a GatedTool; under @tool it gates the function."""

from __future__ import annotations

from typing import Any

import pytest
from gatekit_langchain import GatedTool, GatekitToolError, langchain_tool
from gatekit_langchain.testing import ScriptedChatModel
from langchain.agents import create_agent
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool

from gatekit import BackendError, Blocked, Client, LocalBackend
from gatekit.testing import MockBackend


def call(name: str, args: dict[str, Any], call_id: str = "c1") -> ToolCall:
    return ToolCall(name=name, args=args, id=call_id, type="tool_call")


def test_over_tool_returns_a_gated_tool_in_a_real_agent(engine: LocalBackend) -> None:
    ran: list[str] = []
    client = Client(engine)

    @langchain_tool(client=client, risk_level="low", operation_class="read")
    @tool
    def lookup(city: str) -> str:
        """Weather for a city."""
        ran.append(city)
        return f"sunny in {city}"

    @langchain_tool(client=client, risk_level="critical", operation_class="delete")
    @tool
    def wipe_disk(path: str) -> str:
        """Erase a disk."""
        ran.append(path)
        return "wiped"

    assert isinstance(lookup, GatedTool)
    assert isinstance(wipe_disk, GatedTool)
    assert convert_to_openai_tool(lookup) == convert_to_openai_tool(lookup.inner)

    model = ScriptedChatModel.calling(
        [
            {"name": "lookup", "args": {"city": "Oslo"}, "id": "c1"},
            {"name": "wipe_disk", "args": {"path": "/"}, "id": "c2"},
        ],
        "ok",
    )
    result = create_agent(model, tools=[lookup, wipe_disk]).invoke({"messages": [("user", "go")]})
    messages = {m.tool_call_id: m for m in result["messages"] if isinstance(m, ToolMessage)}
    assert (messages["c1"].status, messages["c1"].content) == ("success", "sunny in Oslo")
    assert messages["c2"].status == "error"
    assert "blocked by policy" in messages["c2"].content
    assert ran == ["Oslo"]


def test_under_tool_keeps_the_schema_and_gates_the_function() -> None:
    ran: list[str] = []
    backend = MockBackend(verdicts={"wipe_disk": "block"})

    def plain_wipe(path: str, force: bool = False) -> str:
        """Erase a disk."""
        return "wiped"

    @tool
    @langchain_tool(client=Client(backend), risk_level="high")
    def wipe_disk(path: str, force: bool = False) -> str:
        """Erase a disk."""
        ran.append(path)
        return "wiped"

    assert isinstance(wipe_disk, BaseTool)
    schema = convert_to_openai_tool(wipe_disk)["function"]
    assert schema == {**convert_to_openai_tool(tool(plain_wipe))["function"], "name": "wipe_disk"}

    with pytest.raises(GatekitToolError, match="blocked by policy") as caught:
        wipe_disk.invoke(call("wipe_disk", {"path": "/"}))
    assert isinstance(caught.value.error, Blocked)
    sent = backend.requests[-1].action
    assert (sent.tool, sent.arguments, sent.risk_level.value) == (
        "wipe_disk",
        {"path": "/", "force": False},
        "high",
    )
    assert ran == []


def test_under_tool_refusal_reaches_the_model_with_handle_tool_error() -> None:
    ran: list[str] = []

    @langchain_tool(client=Client(MockBackend(verdicts={"wipe_disk": "block"})))
    def wipe_disk(path: str) -> str:
        """Erase a disk."""
        ran.append(path)
        return "wiped"

    wrapped = StructuredTool.from_function(wipe_disk, handle_tool_error=True)
    message = wrapped.invoke(call("wipe_disk", {"path": "/"}))
    assert message.status == "error"
    assert message.content.startswith("gatekit did not run tool 'wipe_disk': blocked")
    assert ran == []


def test_under_tool_allowed_call_runs() -> None:
    @tool
    @langchain_tool(client=Client(MockBackend()), risk_level="low")
    def lookup(city: str) -> str:
        """Weather."""
        return f"sunny in {city}"

    assert lookup.invoke({"city": "Oslo"}) == "sunny in Oslo"


@pytest.mark.anyio
async def test_under_tool_async_function_is_gated() -> None:
    ran: list[str] = []
    backend = MockBackend()
    backend.fail_with = RuntimeError("engine down")

    @tool
    @langchain_tool(client=Client(backend))
    async def wipe_disk(path: str) -> str:
        """Erase a disk."""
        ran.append(path)
        return "wiped"

    with pytest.raises(GatekitToolError) as caught:
        await wipe_disk.ainvoke({"path": "/"})
    assert isinstance(caught.value.error, BackendError)
    assert ran == []


def test_under_tool_sync_function_fails_closed() -> None:
    ran: list[str] = []
    backend = MockBackend()
    backend.fail_with = RuntimeError("engine down")

    @tool
    @langchain_tool(client=Client(backend))
    def wipe_disk(path: str) -> str:
        """Erase a disk."""
        ran.append(path)
        return "wiped"

    with pytest.raises(GatekitToolError, match="could not get a decision"):
        wipe_disk.invoke({"path": "/"})
    assert ran == []


def test_decorator_rejects_invalid_fields_at_definition() -> None:
    from gatekit import ValidationError

    with pytest.raises(ValidationError, match="operation_class"):

        @langchain_tool(operation_class="teleport")
        def f(x: int) -> int:
            return x
