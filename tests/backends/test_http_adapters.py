"""Every adapter, unchanged, against a real ``gatekit serve`` through HttpBackend:
a LangChain agent (scripted chat model), CrewAI tools through crewai's own entry
points, and the MCP boundary. Allowed calls run, blocked ones never do, and a
review approved on the server lets the waiting call run once."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import pytest
from crewai.tools import tool as crewai_tool_decorator
from gatekit_crewai import GatekitToolFailure, secure_crewai_tool
from gatekit_langchain import GatekitMiddleware, secure_langchain_tool
from gatekit_langchain.testing import ScriptedChatModel
from gatekit_mcp import McpToolBoundary
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import BaseTool, StructuredTool

from gatekit import AsyncClient, Blocked, Client, Status
from gatekit.api_keys import Role
from tests.backends.live_server import LiveServer
from tests.backends.test_http import Approver, recorded

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:crewai")


def suffix() -> str:
    return uuid.uuid4().hex[:8]


# -- LangChain ---------------------------------------------------------------------------


def langchain_tools(names: dict[str, str], ran: list[str]) -> list[BaseTool]:
    def make(name: str) -> BaseTool:
        def body(target: str) -> str:
            ran.append(name)
            return f"{name} done for {target}"

        return StructuredTool.from_function(body, name=names[name], description=f"{name} tool")

    return [make(name) for name in ("lookup", "drop", "pay")]


@pytest.mark.parametrize("style", ["middleware", "secured"])
def test_a_langchain_agent_runs_against_the_server(live_server: LiveServer, style: str) -> None:
    tag = suffix()
    names = {"lookup": f"lookup_{tag}", "drop": f"drop_{tag}", "pay": f"pay_{tag}"}
    fields = {
        names["lookup"]: {"risk_level": "low", "operation_class": "read"},
        names["drop"]: {"risk_level": "low", "operation_class": "delete"},
        names["pay"]: {"risk_level": "medium", "operation_class": "financial"},
    }
    ran: list[str] = []
    tools = langchain_tools(names, ran)
    client = Client(live_server.backend(), agent_id="lc-agent")
    model = ScriptedChatModel.calling(
        [
            {"name": names["lookup"], "args": {"target": "oslo"}, "id": "c1"},
            {"name": names["drop"], "args": {"target": "users"}, "id": "c2"},
        ],
        [{"name": names["pay"], "args": {"target": "acme"}, "id": "c3"}],
        "All done.",
    )
    if style == "middleware":
        gate = GatekitMiddleware(client, tools=fields, review_timeout=30)
        agent = create_agent(model, tools=tools, middleware=[gate])
    else:
        gated = [
            secure_langchain_tool(t, client=client, review_timeout=30, **fields[t.name])
            for t in tools
        ]
        agent = create_agent(model, tools=gated)

    with Approver(live_server.backend(Role.REVIEWER), names["pay"]):
        final = agent.invoke({"messages": [("user", "go")]})

    seen = {m.tool_call_id: m for turn in model.seen for m in turn if isinstance(m, ToolMessage)}
    assert seen["c1"].status == "success"
    assert seen["c2"].status == "error"
    assert seen["c2"].content == (
        f"gatekit did not run tool '{names['drop']}': blocked by policy: never drop tables"
    )
    assert (seen["c3"].status, seen["c3"].content) == ("success", "pay done for acme")
    assert final["messages"][-1].content == "All done."
    assert ran == ["lookup", "pay"]
    (paid,) = recorded(live_server, names["pay"])
    assert (paid.status, paid.reviewer) == (Status.APPROVED, "reviewer-1")


# -- CrewAI ------------------------------------------------------------------------------


def test_crewai_tools_run_against_the_server(live_server: LiveServer) -> None:
    tag, ran = suffix(), []

    @crewai_tool_decorator(f"lookup_{tag}")
    def lookup(city: str) -> str:
        """Look up today's weather in a city."""
        ran.append(city)
        return f"sunny in {city}"

    @crewai_tool_decorator(f"drop_{tag}")
    def drop(table: str) -> str:
        """Drop a table."""
        ran.append(table)
        return "dropped"

    client = Client(live_server.backend(), agent_id="crew-agent")
    weather = secure_crewai_tool(lookup, client=client, risk_level="low", operation_class="read")
    dropper = secure_crewai_tool(drop, client=client, risk_level="low", operation_class="delete")

    assert weather.run(city="Paris") == "sunny in Paris"  # crewai's native path
    assert weather.to_structured_tool().invoke({"city": "Rome"}) == "sunny in Rome"  # ReAct
    assert anyio.run(lambda: weather.arun(city="Oslo")) == "sunny in Oslo"
    refused = dropper.run(table="customers")
    assert isinstance(refused, GatekitToolFailure)
    assert refused.code == "gatekit.blocked"
    assert "never drop tables" in dropper.format_output_for_agent(refused)
    assert ran == ["Paris", "Rome", "Oslo"]
    assert {d.status for d in recorded(live_server, f"lookup_{tag}")} == {Status.ALLOWED}


# -- MCP ---------------------------------------------------------------------------------


def test_the_mcp_boundary_gates_against_the_server(live_server: LiveServer) -> None:
    tag, ran = suffix(), []
    backend = live_server.backend()

    def boundary(client: Client | AsyncClient) -> McpToolBoundary:
        return McpToolBoundary(
            server_name="files",
            toolset_id="fs-v1",
            client=client,
            client_name="my-host",
            default={"risk_level": "low", "operation_class": "read"},
            review_timeout=30,
        )

    def handler(arguments: dict[str, Any]) -> str:
        ran.append(arguments["path"])
        return "contents"

    sync_gate = boundary(Client(backend, agent_id="mcp-host"))
    assert sync_gate.invoke(tool_name=f"read_{tag}", arguments={"path": "a"}, handler=handler) == (
        "contents"
    )
    with pytest.raises(Blocked):
        sync_gate.invoke(tool_name=f"drop_{tag}", arguments={"path": "b"}, handler=handler)

    async def handle(arguments: dict[str, Any]) -> str:
        return handler(arguments)

    async def in_async() -> str:
        gate = boundary(AsyncClient(backend, agent_id="mcp-host"))
        return await gate.ainvoke(tool_name=f"pay_{tag}", arguments={"path": "c"}, handler=handle)

    with Approver(live_server.backend(Role.REVIEWER), f"pay_{tag}"):
        assert anyio.run(in_async) == "contents"
    assert ran == ["a", "c"]
    (paid,) = recorded(live_server, f"pay_{tag}")
    assert paid.status is Status.APPROVED
    assert paid.consumed_at is not None
