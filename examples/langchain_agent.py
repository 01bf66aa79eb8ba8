"""A LangChain agent governed by gatekit: one call allowed, one blocked, one held for review.

Runs offline with no arguments: a scripted chat model stands in for the LLM,
and the embedded engine decides. The review pauses the agent (a LangGraph
interrupt); a "reviewer" approves, and the agent resumes where it stopped.

    uv run python examples/langchain_agent.py
"""

from __future__ import annotations

from gatekit_langchain import GatekitMiddleware, approve, secure_langchain_tool
from gatekit_langchain.testing import ScriptedChatModel
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from gatekit import Client, DecisionRequest, LocalBackend, OperationClass, Verdict
from gatekit.policy import Evaluation


class ExamplePolicy:
    """Deleting is never allowed; everything else is allowed (high risk still needs review)."""

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        if request.action.operation_class is OperationClass.DELETE:
            return Evaluation(Verdict.BLOCK, "deleting records is not allowed", ("no-deletes",))
        return Evaluation(Verdict.ALLOW, "allowed by the example policy", ("allow-rest",))


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny and 21 C in {city}"


@tool
def delete_records(table: str) -> str:
    """Delete every record in a table."""
    return f"deleted all of {table}"  # never reached: the policy blocks it


@tool
def send_email(to: str, subject: str) -> str:
    """Send an email."""
    return f"email '{subject}' sent to {to}"


def main() -> None:
    engine = LocalBackend(policy=ExamplePolicy())
    client = Client(engine)

    # One tool gated on its own, the others by the agent-wide middleware.
    email = secure_langchain_tool(
        send_email, client=client, risk_level="high", operation_class="communicate"
    )
    middleware = GatekitMiddleware(
        client,
        tools={
            "get_weather": {"risk_level": "low", "operation_class": "read"},
            "delete_records": {"risk_level": "medium", "operation_class": "delete"},
        },
    )
    model = ScriptedChatModel.calling(
        [
            {"name": "get_weather", "args": {"city": "Lisbon"}, "id": "call_weather"},
            {"name": "delete_records", "args": {"table": "customers"}, "id": "call_delete"},
        ],
        [
            {
                "name": "send_email",
                "args": {"to": "ops@example.com", "subject": "Report"},
                "id": "call_email",
            }
        ],
        "Weather checked, deletion refused, report sent.",
    )
    agent = create_agent(
        model,
        tools=[get_weather, delete_records, email],
        middleware=[middleware],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "example"}}

    print("== run: the agent calls get_weather, delete_records, then send_email")
    paused = agent.invoke({"messages": [("user", "Weather, clean up, then email ops.")]}, config)
    for interrupt in paused["__interrupt__"]:
        review = interrupt.value
        print(f"paused for review: {review['tool']} {review['arguments']} ({review['reason']})")

    print("== a reviewer approves; the agent resumes")
    done = agent.invoke(Command(resume=approve("alice", "ok to send")), config)

    for message in done["messages"]:
        if isinstance(message, ToolMessage):
            print(f"[{message.status}] {message.name}: {message.content}")
    print(f"final answer: {done['messages'][-1].content}")

    print("== decisions recorded by gatekit")
    for decision in engine.store.list():
        print(f"{decision.tool:15} {decision.status.value:9} {decision.reason}")

    statuses = sorted(d.status.value for d in engine.store.list())
    assert statuses == ["allowed", "approved", "blocked"], statuses


if __name__ == "__main__":
    main()
