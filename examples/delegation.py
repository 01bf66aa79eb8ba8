"""Two agents: an orchestrator hands a worker a narrow right, and the worker's
LangChain agent acts under it. One call inside the scope runs; one outside is
blocked, and the audit record says why.

Runs offline with no arguments: a scripted chat model stands in for the LLM, and
the embedded engine (SQLite under GATEKIT_DATA_DIR, default .gatekit) decides.

    uv run python examples/delegation.py
"""

from __future__ import annotations

from gatekit_langchain import GatekitMiddleware
from gatekit_langchain.testing import ScriptedChatModel
from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool

from gatekit import Client, Gateway, LocalBackend
from gatekit.delegation import AgentKey, DelegationChain, DelegationScope, register_key

FILES = {
    "/data/reports/q3.txt": "Q3 revenue: 4.2 M EUR, up 8 %",
    "/data/payroll/salaries.csv": "name,salary\n...",
}
READ: list[str] = []  # what the tool really read


@tool
def read_file(path: str) -> str:
    """Read a file."""
    READ.append(path)
    return FILES[path]


def orchestrator_hands_over(backend: LocalBackend, worker_key: AgentKey) -> tuple[str, ...]:
    """The orchestrator side: its own key is a trusted root, the worker's public key
    is registered, and a token lets the worker read reports for ten minutes."""
    orchestrator = AgentKey.generate("orchestrator")
    register_key(backend.store, orchestrator, root=True)
    register_key(backend.store, worker_key)  # only the public half is stored
    chain = DelegationChain.issue_root(
        orchestrator,
        delegatee="worker",
        delegatee_key_id=worker_key.key_id,
        scope=DelegationScope(
            max_risk="low",
            operations={"read"},
            tools=("read_file",),
            resources=("/data/reports",),
            budget=20,
        ),
        ttl=600,
    )
    return chain.tokens  # plain strings: what travels to the worker


def main() -> None:
    backend = LocalBackend()
    client = Client(backend)

    worker_key = AgentKey.generate("worker")  # the worker's private key never leaves it
    tokens = orchestrator_hands_over(backend, worker_key)

    # The worker side: a LangChain agent whose tool calls are gated by the middleware.
    model = ScriptedChatModel.calling(
        [
            {"name": "read_file", "args": {"path": "/data/reports/q3.txt"}, "id": "call_1"},
            {"name": "read_file", "args": {"path": "/data/payroll/salaries.csv"}, "id": "call_2"},
        ],
        "Q3 revenue is 4.2 M EUR; the payroll file was refused.",
    )
    middleware = GatekitMiddleware(
        client, tools={"read_file": {"risk_level": "low", "operation_class": "read"}}
    )
    agent = create_agent(model, tools=[read_file], middleware=[middleware])

    gateway = Gateway(client, agent_id="worker", max_tool_calls=10)
    delegation = DelegationChain(tokens).held_by(worker_key)
    result = gateway.run(
        agent.invoke,
        input={"messages": [("user", "Summarise Q3 and the payroll.")]},
        delegation=delegation,
    )

    print(f"== run {result.run_id}: {result.decision.status.value}")
    for message in result.output["messages"]:
        if isinstance(message, ToolMessage):
            print(f"[{message.status}] {message.name}: {message.content}")
    print(f"final answer: {result.output['messages'][-1].content}")
    print(f"summary: {result.summary}")

    print("== decisions and the delegation check in each audit record")
    codes = {}
    for decision in sorted(backend.store.list(), key=lambda d: d.created_at):
        record, *_ = backend.store.decision_records(decision.decision_id)
        body = record.content()["data"]  # the decision record, as hash-chained
        check = next(c["detail"] for c in body["checks"] if c["name"] == "delegation")
        path = body["action"]["arguments"].get("path", "")
        print(f"{decision.tool:10} {path:28} {decision.status.value:8} {check}")
        codes[path] = (decision.status.value, check)

    assert codes["/data/reports/q3.txt"][0] == "allowed"
    assert codes["/data/payroll/salaries.csv"] == ("blocked", "out_of_scope.resources")
    assert (result.summary.allowed, result.summary.blocked) == (1, 1)
    assert READ == ["/data/reports/q3.txt"]  # the refused read never ran
    backend.close()


if __name__ == "__main__":
    main()
