"""A gate that cannot decide never lets a tool run: every entry point, sync and async."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from gatekit_langchain import GatedTool, GatekitMiddleware, approve, secure_langchain_tool
from gatekit_langchain.testing import ScriptedChatModel
from langchain.agents import create_agent
from langchain_core.messages import ToolCall, ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from gatekit import BackendError, Client, Decision, DecisionRequest
from gatekit.testing import MockBackend

FAIL_CLOSED = (
    "gatekit could not get a decision for tool 'wipe_disk', so it did not run; "
    "try again later or report it to an operator"
)


def tool_call(call_id: str = "c1") -> ToolCall:
    return ToolCall(name="wipe_disk", args={"path": "/"}, id=call_id, type="tool_call")


@pytest.fixture
def ran() -> list[str]:
    return []


@pytest.fixture
def broken() -> MockBackend:
    backend = MockBackend(default="allow")
    backend.fail_with = RuntimeError("engine down")
    return backend


def wipe_disk_tool(ran: list[str]) -> Any:
    @tool
    def wipe_disk(path: str) -> str:
        """Erase a disk."""
        ran.append(path)
        return "wiped"

    return wipe_disk


@pytest.fixture
def gated(broken: MockBackend, ran: list[str]) -> GatedTool:
    return secure_langchain_tool(wipe_disk_tool(ran), client=Client(broken), risk_level="low")


def assert_refused(message: Any) -> None:
    assert isinstance(message, ToolMessage)
    assert (message.status, message.content) == ("error", FAIL_CLOSED)


SYNC_TOOL_CALLS: dict[str, Callable[[GatedTool], Any]] = {
    "invoke": lambda t: [t.invoke(tool_call())],
    "run": lambda t: [t.run({"path": "/"}, tool_call_id="c1")],
    "batch": lambda t: t.batch([tool_call("c1"), tool_call("c2")]),
}
SYNC_DIRECT: dict[str, Callable[[GatedTool], Any]] = {
    "invoke": lambda t: t.invoke({"path": "/"}),
    "run": lambda t: t.run({"path": "/"}),
    "batch": lambda t: t.batch([{"path": "/"}]),
    "_run": lambda t: t._run(path="/"),
}
ASYNC_TOOL_CALLS: dict[str, Callable[[GatedTool], Awaitable[Any]]] = {
    "ainvoke": lambda t: t.ainvoke(tool_call()),
    "arun": lambda t: t.arun({"path": "/"}, tool_call_id="c1"),
    "abatch": lambda t: t.abatch([tool_call("c1"), tool_call("c2")]),
}
ASYNC_DIRECT: dict[str, Callable[[GatedTool], Awaitable[Any]]] = {
    "ainvoke": lambda t: t.ainvoke({"path": "/"}),
    "arun": lambda t: t.arun({"path": "/"}),
    "abatch": lambda t: t.abatch([{"path": "/"}]),
    "_arun": lambda t: t._arun(path="/"),
}


@pytest.mark.parametrize("entry", SYNC_TOOL_CALLS)
def test_tool_calls_are_refused(entry: str, gated: GatedTool, ran: list[str]) -> None:
    for message in SYNC_TOOL_CALLS[entry](gated):
        assert_refused(message)
    assert ran == []


@pytest.mark.parametrize("entry", SYNC_DIRECT)
def test_direct_calls_raise(entry: str, gated: GatedTool, ran: list[str]) -> None:
    with pytest.raises(BackendError, match="engine down"):
        SYNC_DIRECT[entry](gated)
    assert ran == []


@pytest.mark.anyio
@pytest.mark.parametrize("entry", ASYNC_TOOL_CALLS)
async def test_async_tool_calls_are_refused(entry: str, gated: GatedTool, ran: list[str]) -> None:
    result = await ASYNC_TOOL_CALLS[entry](gated)
    for message in result if isinstance(result, list) else [result]:
        assert_refused(message)
    assert ran == []


@pytest.mark.anyio
@pytest.mark.parametrize("entry", ASYNC_DIRECT)
async def test_async_direct_calls_raise(entry: str, gated: GatedTool, ran: list[str]) -> None:
    with pytest.raises(BackendError, match="engine down"):
        await ASYNC_DIRECT[entry](gated)
    assert ran == []


def middleware_agent(backend: MockBackend, ran: list[str], **agent_options: Any) -> Any:
    model = ScriptedChatModel.calling(
        [{"name": "wipe_disk", "args": {"path": "/"}, "id": "c1"}], "Could not do it."
    )
    gate = GatekitMiddleware(Client(backend), default={"risk_level": "low"})
    return create_agent(model, tools=[wipe_disk_tool(ran)], middleware=[gate], **agent_options)


def test_middleware_refuses_when_the_backend_fails(broken: MockBackend, ran: list[str]) -> None:
    result = middleware_agent(broken, ran).invoke({"messages": [("user", "wipe")]})
    assert_refused(result["messages"][-2])
    assert ran == []


@pytest.mark.anyio
async def test_async_middleware_refuses_when_the_backend_fails(
    broken: MockBackend, ran: list[str]
) -> None:
    result = await middleware_agent(broken, ran).ainvoke({"messages": [("user", "wipe")]})
    assert_refused(result["messages"][-2])
    assert ran == []


class ConsumeFails(MockBackend):
    """Decides fine, then fails the re-check just before execution."""

    def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
        raise OSError("store unavailable")


def test_failed_recheck_before_execution_refuses(ran: list[str]) -> None:
    gated = secure_langchain_tool(wipe_disk_tool(ran), client=Client(ConsumeFails()))
    assert_refused(gated.invoke(tool_call()))
    assert ran == []


class ReviewFails(MockBackend):
    """Cannot record a review."""

    def approve(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        raise OSError("review store unavailable")


@pytest.mark.parametrize("style", ["middleware", "secured"])
def test_failed_review_recording_refuses(style: str, ran: list[str]) -> None:
    backend = ReviewFails(default="review")
    client = Client(backend)
    model = ScriptedChatModel.calling(
        [{"name": "wipe_disk", "args": {"path": "/"}, "id": "c1"}], "Ok."
    )
    if style == "middleware":
        gate = GatekitMiddleware(client)
        agent = create_agent(
            model, tools=[wipe_disk_tool(ran)], middleware=[gate], checkpointer=InMemorySaver()
        )
    else:
        gated = secure_langchain_tool(wipe_disk_tool(ran), client=client)
        agent = create_agent(model, tools=[gated], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    agent.invoke({"messages": [("user", "wipe")]}, config)
    result = agent.invoke(Command(resume=approve("alice")), config)
    message = result["messages"][-2]
    assert message.status == "error"
    assert "could not get a decision for tool" in message.content
    assert ran == []


def test_middleware_decides_a_call_with_no_registered_tool() -> None:
    """An inner middleware may serve an unregistered tool itself: it is decided too."""
    from gatekit_langchain import GatekitMiddleware
    from langgraph.prebuilt.tool_node import ToolCallRequest

    from gatekit import Client
    from gatekit.testing import MockBackend

    served: list[str] = []
    middleware = GatekitMiddleware(Client(MockBackend(default="block")))
    request = ToolCallRequest(
        tool_call={"name": "dynamic_tool", "args": {}, "id": "c1", "type": "tool_call"},
        tool=None,
        state={},
        runtime=None,  # type: ignore[arg-type]
    )

    def inner(req: ToolCallRequest) -> object:
        served.append(req.tool_call["name"])
        return "served"

    answer = middleware.wrap_tool_call(request, inner)  # type: ignore[arg-type]
    assert served == []
    assert getattr(answer, "status", None) == "error"
