"""Reviews as LangGraph interrupts: pause, resume with the reviewer's decision, run at most once."""

from __future__ import annotations

from typing import Any

import pytest
from gatekit_langchain import GatekitMiddleware, approve, reject, secure_langchain_tool
from gatekit_langchain.testing import ScriptedChatModel
from langchain.agents import create_agent
from langchain_core.messages import BaseMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from gatekit import Client, LocalBackend, Status

STYLES = ["middleware", "secured"]
HIGH = {"risk_level": "high", "operation_class": "communicate", "systems_touched": ["smtp"]}


def email_call(to: str, call_id: str) -> dict[str, Any]:
    return {"name": "send_email", "args": {"to": to}, "id": call_id}


def build(style: str, engine: LocalBackend, model: ScriptedChatModel, sent: list[str]) -> Any:
    @tool
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    client = Client(engine)
    saver = InMemorySaver()
    if style == "middleware":
        gate = GatekitMiddleware(client, tools={"send_email": HIGH})
        return create_agent(model, tools=[send_email], middleware=[gate], checkpointer=saver)
    gated: BaseTool = secure_langchain_tool(send_email, client=client, **HIGH)
    return create_agent(model, tools=[gated], checkpointer=saver)


def tool_messages(messages: list[BaseMessage]) -> dict[str, ToolMessage]:
    return {m.tool_call_id: m for m in messages if isinstance(m, ToolMessage)}


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


@pytest.mark.parametrize("style", STYLES)
def test_approved_resume_runs_the_tool_once(style: str, engine: LocalBackend) -> None:
    sent: list[str] = []
    model = ScriptedChatModel.calling([email_call("bob@example.com", "c1")], "Sent it.")
    agent = build(style, engine, model, sent)
    config = thread("t-approve")

    paused = agent.invoke({"messages": [("user", "mail bob")]}, config)
    (pending,) = paused["__interrupt__"]
    request = pending.value
    assert request["type"] == "gatekit.review"
    # Arguments as the engine got them: DLP-masked (the raw call is in the AIMessage).
    assert (request["tool"], request["tool_call_id"], request["arguments"]) == (
        "send_email",
        "c1",
        {"to": "[REDACTED:email]"},
    )
    assert request["risk_level"] == "high"
    (open_review,) = engine.pending()
    assert request["approval_id"] == open_review.approval_id
    assert sent == []

    done = agent.invoke(Command(resume=approve("alice", "looks fine")), config)
    assert sent == ["bob@example.com"]
    message = tool_messages(done["messages"])["c1"]
    assert (message.status, message.content) == ("success", "sent to bob@example.com")
    assert done["messages"][-1].content == "Sent it."
    # The resumed call found its decision again (idempotency key), approved and used once.
    (decision,) = engine.store.list()
    assert decision.status is Status.APPROVED
    assert (decision.reviewer, decision.review_comment) == ("alice", "looks fine")
    assert decision.consumed_at is not None
    assert decision.approval_id == request["approval_id"]


@pytest.mark.parametrize("style", STYLES)
def test_rejected_resume_never_runs_the_tool(style: str, engine: LocalBackend) -> None:
    sent: list[str] = []
    model = ScriptedChatModel.calling([email_call("eve@example.com", "c1")], "Understood.")
    agent = build(style, engine, model, sent)
    config = thread("t-reject")
    agent.invoke({"messages": [("user", "mail eve")]}, config)

    done = agent.invoke(Command(resume=reject("alice", "not to eve")), config)
    assert sent == []
    message = tool_messages(model.seen[-1])["c1"]
    assert message.status == "error"
    assert message.content == (
        "gatekit did not run tool 'send_email': a human reviewer rejected it: "
        "rejected by alice: not to eve"
    )
    assert done["messages"][-1].content == "Understood."
    (decision,) = engine.store.list()
    assert (decision.status, decision.reviewer) == (Status.REJECTED, "alice")


@pytest.mark.parametrize("style", STYLES)
def test_parallel_calls_each_get_their_own_approval(style: str, engine: LocalBackend) -> None:
    sent: list[str] = []
    model = ScriptedChatModel.calling(
        [email_call("a@example.com", "c1"), email_call("b@example.com", "c2")], "Done."
    )
    agent = build(style, engine, model, sent)
    config = thread("t-parallel")

    paused = agent.invoke({"messages": [("user", "mail a and b")]}, config)
    interrupts = {i.value["tool_call_id"]: i for i in paused["__interrupt__"]}
    assert set(interrupts) == {"c1", "c2"}
    assert interrupts["c1"].value["approval_id"] != interrupts["c2"].value["approval_id"]
    assert len(engine.pending()) == 2

    answers = {
        interrupts["c1"].id: approve("alice", approval_id=interrupts["c1"].value["approval_id"]),
        interrupts["c2"].id: reject("alice", "not b"),
    }
    done = agent.invoke(Command(resume=answers), config)
    assert sent == ["a@example.com"]
    messages = tool_messages(done["messages"])
    assert messages["c1"].status == "success"
    assert messages["c2"].status == "error"
    assert "rejected by alice: not b" in messages["c2"].content
    statuses = sorted(d.status.value for d in engine.store.list())
    assert statuses == ["approved", "rejected"]


@pytest.mark.parametrize("style", STYLES)
def test_invalid_resume_value_does_not_run_the_tool(style: str, engine: LocalBackend) -> None:
    sent: list[str] = []
    model = ScriptedChatModel.calling([email_call("bob@example.com", "c1")], "Ok.")
    agent = build(style, engine, model, sent)
    config = thread("t-invalid")
    agent.invoke({"messages": [("user", "mail bob")]}, config)

    done = agent.invoke(Command(resume="yes please"), config)
    assert sent == []
    message = tool_messages(done["messages"])["c1"]
    assert message.status == "error"
    assert "invalid review resume value" in message.content
    (decision,) = engine.store.list()
    assert decision.status is Status.PENDING_REVIEW  # nothing was recorded for it


@pytest.mark.parametrize("style", STYLES)
def test_resume_pinned_to_another_approval_does_not_run(style: str, engine: LocalBackend) -> None:
    sent: list[str] = []
    model = ScriptedChatModel.calling([email_call("bob@example.com", "c1")], "Ok.")
    agent = build(style, engine, model, sent)
    config = thread("t-pinned")
    paused = agent.invoke({"messages": [("user", "mail bob")]}, config)
    approval_id = paused["__interrupt__"][0].value["approval_id"]

    done = agent.invoke(Command(resume=approve("alice", approval_id="apr_other")), config)
    assert sent == []
    assert "answers approval apr_other" in tool_messages(done["messages"])["c1"].content
    (decision,) = engine.store.list()
    assert (decision.approval_id, decision.status) == (approval_id, Status.PENDING_REVIEW)


@pytest.mark.parametrize("style", STYLES)
def test_review_recorded_elsewhere_first_is_what_counts(style: str, engine: LocalBackend) -> None:
    sent: list[str] = []
    model = ScriptedChatModel.calling([email_call("bob@example.com", "c1")], "Ok.")
    agent = build(style, engine, model, sent)
    config = thread("t-elsewhere")
    paused = agent.invoke({"messages": [("user", "mail bob")]}, config)
    engine.reject(paused["__interrupt__"][0].value["approval_id"], reviewer="bob-the-admin")

    done = agent.invoke(Command(resume=approve("alice")), config)
    assert sent == []  # the stored rejection stands; the late approval changes nothing
    assert tool_messages(done["messages"])["c1"].status == "error"
    (decision,) = engine.store.list()
    assert (decision.status, decision.reviewer) == (Status.REJECTED, "bob-the-admin")


@pytest.mark.parametrize("style", STYLES)
def test_resume_rejection_wins_over_an_earlier_approval(style: str, engine: LocalBackend) -> None:
    sent: list[str] = []
    model = ScriptedChatModel.calling([email_call("bob@example.com", "c1")], "Ok.")
    agent = build(style, engine, model, sent)
    config = thread("t-both")
    paused = agent.invoke({"messages": [("user", "mail bob")]}, config)
    engine.approve(paused["__interrupt__"][0].value["approval_id"], reviewer="bob-the-admin")

    agent.invoke(Command(resume=reject("alice")), config)
    assert sent == []  # any "no" keeps the tool from running


@pytest.mark.anyio
@pytest.mark.parametrize("style", STYLES)
async def test_async_interrupt_approve_then_reject(style: str, engine: LocalBackend) -> None:
    sent: list[str] = []
    model = ScriptedChatModel.calling(
        [email_call("a@example.com", "c1")],
        [email_call("b@example.com", "c2")],
        "Done.",
    )
    agent = build(style, engine, model, sent)
    config = thread("t-async")

    paused = await agent.ainvoke({"messages": [("user", "mail a then b")]}, config)
    assert paused["__interrupt__"][0].value["tool_call_id"] == "c1"
    paused = await agent.ainvoke(Command(resume=approve("alice")), config)
    assert sent == ["a@example.com"]
    assert paused["__interrupt__"][0].value["tool_call_id"] == "c2"
    done = await agent.ainvoke(Command(resume=reject("alice")), config)
    assert sent == ["a@example.com"]
    messages = tool_messages(done["messages"])
    assert (messages["c1"].status, messages["c2"].status) == ("success", "error")
    assert done["messages"][-1].content == "Done."
