"""A CrewAI crew whose tool calls are governed by gatekit — offline, no API key.

    uv run python examples/crewai_crew.py

A support agent (driven by a scripted stand-in for an LLM) looks up an order,
tries to delete a customer, and issues a refund. gatekit's embedded engine
allows the lookup, blocks the deletion (the agent is told why; the tool body
never runs), and holds the refund until a reviewer approves it.
"""

from __future__ import annotations

import os
import tempfile

# crewai reads these at import: no telemetry, no tracing prompt, nothing in the real $HOME.
os.environ.update(
    {
        "HOME": tempfile.mkdtemp(prefix="gatekit-example-"),
        "CREWAI_DISABLE_TELEMETRY": "true",
        "OTEL_SDK_DISABLED": "true",
        "CREWAI_TESTING": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "CREWAI_DISABLE_VERSION_CHECK": "true",
    }
)

import atexit
import shutil
import threading
import time
from typing import Any

from crewai import Agent, Crew, Task
from crewai.llms.base_llm import BaseLLM
from gatekit_crewai import crewai_tool
from pydantic import Field

from gatekit import Client, DecisionRequest, LocalBackend, OperationClass, Verdict
from gatekit.policy import DefaultPolicy, Evaluation

atexit.register(shutil.rmtree, os.environ["HOME"], ignore_errors=True)  # the temporary home


class SupportPolicy:
    """Nobody deletes customers; otherwise gatekit's default (low risk runs, the rest waits
    for a human). The engine adds the risk floor: high-risk actions always need review."""

    def evaluate(self, request: DecisionRequest) -> Evaluation:
        if request.action.operation_class is OperationClass.DELETE:
            return Evaluation(Verdict.BLOCK, "customer records are never deleted by agents")
        return DefaultPolicy().evaluate(request)


class ScriptedLLM(BaseLLM):
    """Stands in for a model with native function calling: answers from a script."""

    script: list[Any]
    seen: list[list[dict[str, Any]]] = Field(default_factory=list)

    def call(self, messages: Any, *args: Any, **kwargs: Any) -> Any:
        self.seen.append([dict(m) for m in messages])
        return self.script.pop(0)

    def supports_function_calling(self) -> bool:
        return True

    def get_input_tokens_count(self, *args: Any, **kwargs: Any) -> int:
        return 1

    def get_context_window_size(self) -> int:
        return 1_000_000


def call(call_id: str, tool: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": tool, "arguments": arguments}}


engine = LocalBackend(policy=SupportPolicy())
client = Client(engine, approval_timeout=30)


@crewai_tool(client=client, risk_level="low", operation_class="read", systems_touched=["orders"])
def lookup_order(order_id: str) -> str:
    """Look up an order by its id."""
    return f"order {order_id}: 2 items, paid, delivered late"


@crewai_tool(client=client, risk_level="medium", operation_class="delete", systems_touched=["crm"])
def delete_customer(customer_id: str) -> str:
    """Delete a customer and all their records."""
    raise SystemExit("unreachable: gatekit blocks this tool")


@crewai_tool(client=client, risk_level="high", operation_class="financial", systems_touched=["pay"])
def issue_refund(order_id: str, amount: float) -> str:
    """Refund an amount for an order."""
    return f"refunded {amount:.2f} EUR for order {order_id}"


def reviewer(approve_within: float = 20.0) -> None:
    """A human at the review queue: approves the first pending action."""
    deadline = time.monotonic() + approve_within
    while time.monotonic() < deadline:
        for pending in engine.pending():
            assert pending.approval_id is not None
            print(f"  reviewer alice approves {pending.tool} ({pending.reason})")
            engine.approve(pending.approval_id, reviewer="alice", comment="late delivery")
            return
        time.sleep(0.02)


def main() -> None:
    llm = ScriptedLLM(
        model="scripted-support-model",
        script=[
            [call("c1", "lookup_order", '{"order_id": "A-17"}')],
            [call("c2", "delete_customer", '{"customer_id": "C-9"}')],
            [call("c3", "issue_refund", '{"order_id": "A-17", "amount": 12.5}')],
            "Order A-17 was late: refunded 12.50 EUR. Deleting the customer was not allowed.",
        ],
    )
    agent = Agent(
        role="Support agent",
        goal="Resolve the customer's complaint",
        backstory="Helpful and careful.",
        llm=llm,
        tools=[lookup_order, delete_customer, issue_refund],
    )
    task = Task(
        description="Customer C-9 complains that order A-17 arrived late and wants out.",
        expected_output="What was done",
        agent=agent,
    )

    print("Running the crew (a reviewer is watching the approval queue)...")
    review = threading.Thread(target=reviewer, daemon=True)
    review.start()
    output = Crew(agents=[agent], tasks=[task]).kickoff()
    review.join(timeout=30)

    print("\nWhat the agent was told after each tool call:")
    for message in llm.seen[-1]:
        if message.get("role") == "tool":
            print(f"  {message['name']}: {message['content']}")
    print("\ngatekit decisions:")
    for decision in sorted(engine.store.list(), key=lambda d: d.created_at):
        print(f"  {decision.tool:<16} {decision.status.value:<9} {decision.reason}")
    print(f"\nFinal answer: {output}")


if __name__ == "__main__":
    main()
