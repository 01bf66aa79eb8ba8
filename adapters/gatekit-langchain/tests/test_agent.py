"""A real create_agent agent, a scripted model, the real embedded engine and a reviewer thread.

Each scenario runs twice: gated by ``GatekitMiddleware`` and gated per tool by
``secure_langchain_tool``. The assertions are on what the model reads next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import pytest
from gatekit_langchain import GatekitMiddleware, secure_langchain_tool
from gatekit_langchain.testing import ScriptedChatModel
from langchain.agents import create_agent
from langchain.tools import InjectedState, ToolRuntime
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.tools import BaseTool, tool

from gatekit import Client, LocalBackend, Status

FIELDS: dict[str, dict[str, Any]] = {
    "lookup": {"risk_level": "low", "operation_class": "read", "data_sensitivity": "public"},
    "wipe_disk": {"risk_level": "critical", "operation_class": "delete", "systems_touched": ["fs"]},
    "send_email": {"risk_level": "high", "operation_class": "communicate"},
    "transfer": {"risk_level": "high", "operation_class": "financial", "systems_touched": ["bank"]},
}

STYLES = ["middleware", "secured"]
MAIL = {"name": "send_email", "args": {"to": "bob@example.com", "body": "hi"}, "id": "call_mail"}
ROME = {"name": "lookup", "args": {"city": "Rome"}, "id": "c1"}


def make_tools(ran: list[tuple[str, Any]]) -> list[BaseTool]:
    @tool
    def lookup(city: str, runtime: ToolRuntime) -> str:
        """Weather for a city."""
        ran.append(("lookup", city))
        return f"sunny in {city} ({len(runtime.state['messages'])} messages so far)"

    @tool
    def wipe_disk(path: str) -> str:
        """Erase everything under a path."""
        ran.append(("wipe_disk", path))
        return "wiped"

    @tool
    def send_email(
        to: str, body: str, messages: Annotated[list[BaseMessage], InjectedState("messages")]
    ) -> str:
        """Send an email."""
        ran.append(("send_email", to))
        return f"sent to {to} after {type(messages[0]).__name__}"

    @tool
    def transfer(amount: int, to: str) -> str:
        """Move money."""
        ran.append(("transfer", amount))
        return "transferred"

    return [lookup, wipe_disk, send_email, transfer]


def build_agent(
    style: str, client: Client, model: ScriptedChatModel, ran: list[Any], **agent_options: Any
) -> Any:
    tools = make_tools(ran)
    if style == "middleware":
        gate = GatekitMiddleware(client, tools=FIELDS, review_timeout=30)
        return create_agent(model, tools=tools, middleware=[gate], **agent_options)
    gated = [
        secure_langchain_tool(t, client=client, review_timeout=30, **FIELDS[t.name]) for t in tools
    ]
    return create_agent(model, tools=gated, **agent_options)


def tool_messages(messages: list[BaseMessage]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}


def script() -> ScriptedChatModel:
    return ScriptedChatModel.calling(
        [
            {"name": "lookup", "args": {"city": "Oslo"}, "id": "call_lookup"},
            {"name": "wipe_disk", "args": {"path": "/"}, "id": "call_wipe"},
        ],
        [
            {
                "name": "send_email",
                "args": {"to": "bob@example.com", "body": "hi"},
                "id": "call_mail",
            }
        ],
        [{"name": "transfer", "args": {"amount": 500, "to": "eve"}, "id": "call_pay"}],
        "All done.",
    )


def assert_model_saw_each_outcome(model: ScriptedChatModel, final: list[BaseMessage]) -> None:
    assert len(model.seen) == 4
    first = tool_messages(model.seen[1])
    assert first["call_lookup"].status == "success"
    assert first["call_lookup"].content.startswith("sunny in Oslo")
    assert first["call_wipe"].status == "error"
    assert first["call_wipe"].content == (
        "gatekit did not run tool 'wipe_disk': blocked by policy: "
        "test policy says block for wipe_disk"
    )
    mail = tool_messages(model.seen[2])["call_mail"]
    assert (mail.status, mail.content) == ("success", "sent to bob@example.com after HumanMessage")
    pay = tool_messages(model.seen[3])["call_pay"]
    assert pay.status == "error"
    assert pay.content == (
        "gatekit did not run tool 'transfer': a human reviewer rejected it: "
        "rejected by rita: reject transfer"
    )
    assert final[-1].content == "All done."


def assert_engine_recorded(engine: LocalBackend) -> None:
    by_tool = {d.tool: d for d in engine.store.list()}
    assert by_tool["lookup"].status is Status.ALLOWED
    assert by_tool["wipe_disk"].status is Status.BLOCKED
    assert by_tool["send_email"].status is Status.APPROVED
    assert by_tool["send_email"].reviewer == "rita"
    assert by_tool["send_email"].consumed_at is not None
    assert by_tool["transfer"].status is Status.REJECTED
    # The engine got the model's arguments (DLP-masked), never the injected state.
    mail_action = engine.store.get_action(by_tool["send_email"].decision_id)
    assert mail_action is not None
    assert mail_action.arguments == {"to": "[REDACTED:email]", "body": "hi"}
    assert len(engine.store.list()) == 4


@pytest.mark.parametrize("style", STYLES)
def test_agent_allowed_blocked_approved_rejected(
    style: str, engine: LocalBackend, reviewer: Callable[..., Any]
) -> None:
    ran: list[Any] = []
    model = script()
    agent = build_agent(style, Client(engine), model, ran)
    reviewer({"send_email": "approve", "transfer": "reject"})
    result = agent.invoke({"messages": [("user", "weather, wipe, mail, pay")]})
    assert sorted(ran) == [("lookup", "Oslo"), ("send_email", "bob@example.com")]
    assert_model_saw_each_outcome(model, result["messages"])
    assert_engine_recorded(engine)


@pytest.mark.anyio
@pytest.mark.parametrize("style", STYLES)
async def test_async_agent_allowed_blocked_approved_rejected(
    style: str, engine: LocalBackend, reviewer: Callable[..., Any]
) -> None:
    ran: list[Any] = []
    model = script()
    agent = build_agent(style, Client(engine), model, ran)
    reviewer({"send_email": "approve", "transfer": "reject"})
    result = await agent.ainvoke({"messages": [("user", "weather, wipe, mail, pay")]})
    assert sorted(ran) == [("lookup", "Oslo"), ("send_email", "bob@example.com")]
    assert_model_saw_each_outcome(model, result["messages"])
    assert_engine_recorded(engine)


@pytest.mark.parametrize("style", STYLES)
def test_return_direct_still_ends_the_run(style: str, engine: LocalBackend) -> None:
    @tool(return_direct=True)
    def answer(text: str) -> str:
        """Answer the user directly."""
        return f"ANSWER: {text}"

    model = ScriptedChatModel.calling([{"name": "answer", "args": {"text": "42"}, "id": "c1"}])
    client = Client(engine)
    if style == "middleware":
        agent = create_agent(
            model,
            tools=[answer],
            middleware=[GatekitMiddleware(client, default={"risk_level": "low"})],
        )
    else:
        agent = create_agent(
            model, tools=[secure_langchain_tool(answer, client=client, risk_level="low")]
        )
    result = agent.invoke({"messages": [("user", "?")]})
    assert result["messages"][-1].content == "ANSWER: 42"
    assert len(model.seen) == 1  # the model was not asked again


def test_middleware_uses_the_default_fields_for_unlisted_tools(engine: LocalBackend) -> None:
    ran: list[Any] = []
    model = ScriptedChatModel.calling(
        [{"name": "lookup", "args": {"city": "Rome"}, "id": "c1"}], "ok"
    )
    gate = GatekitMiddleware(Client(engine), default={"risk_level": "high"}, on_review="refuse")
    agent = create_agent(model, tools=make_tools(ran), middleware=[gate])
    result = agent.invoke({"messages": [("user", "weather?")]})
    message = tool_messages(result["messages"])["c1"]
    assert message.status == "error"
    assert "it waits for human review" in message.content
    assert ran == []
    (decision,) = engine.store.list()
    assert (decision.tool, decision.status) == ("lookup", Status.PENDING_REVIEW)


def test_middleware_does_not_decide_twice_for_secured_tools(engine: LocalBackend) -> None:
    ran: list[Any] = []
    lookup = make_tools(ran)[0]
    client = Client(engine)
    model = ScriptedChatModel.calling(
        [{"name": "lookup", "args": {"city": "Rome"}, "id": "c1"}], "ok"
    )
    agent = create_agent(
        model,
        tools=[secure_langchain_tool(lookup, client=client, risk_level="low")],
        middleware=[GatekitMiddleware(client, default={"risk_level": "critical"})],
    )
    agent.invoke({"messages": [("user", "weather?")]})
    assert ran == [("lookup", "Rome")]
    assert [d.tool for d in engine.store.list()] == ["lookup"]


def test_middleware_raise_mode_propagates_the_gatekit_error(engine: LocalBackend) -> None:
    from gatekit import Blocked

    ran: list[Any] = []
    model = ScriptedChatModel.calling([{"name": "wipe_disk", "args": {"path": "/"}, "id": "c1"}])
    gate = GatekitMiddleware(Client(engine), tools=FIELDS, on_denied="raise")
    agent = create_agent(model, tools=make_tools(ran), middleware=[gate])
    with pytest.raises(Blocked):
        agent.invoke({"messages": [("user", "wipe")]})
    assert ran == []
