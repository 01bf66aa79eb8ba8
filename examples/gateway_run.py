"""A governed agent run: one run decision, one run id, a limit on tool calls.

The "agent" here is a plain function that looks up five topics in parallel
threads; the gateway lets it make three gated calls, and blocks the rest.

    python examples/gateway_run.py
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import gatekit

backend = gatekit.LocalBackend()  # the embedded engine: low-risk calls run, others wait for review
client = gatekit.Client(backend)


@client.intercept(risk_level="low", operation_class="read", capture_arguments=True)
def search_docs(topic: str) -> str:
    return f"3 pages about {topic}"


def look_up(topic: str) -> str:
    try:
        return search_docs(topic)
    except gatekit.Blocked as refused:
        limit = next((c.detail for c in refused.decision.checks if c.name == "run.limit"), "")
        return f"refused ({limit or refused.reason})"


def research_agent(topics: list[str]) -> dict[str, str]:
    # Threads start with an empty context: propagate carries the run into them.
    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = pool.map(gatekit.Gateway.propagate(look_up), topics)
        return dict(zip(topics, answers, strict=True))


def main() -> None:
    gateway = gatekit.Gateway(client, agent_id="researcher", max_tool_calls=3)
    result = gateway.run(research_agent, input=["pricing", "refunds", "SLA", "GDPR", "uptime"])

    print(f"run {result.run_id}: {result.decision.status.value} ({result.decision.reason})")
    for topic, answer in result.output.items():
        print(f"  {topic:8} -> {answer}")
    print(f"summary: {result.summary}")
    actions = [backend.store.get_action(d.decision_id) for d in backend.store.list()]
    run_ids = {action.run_id for action in actions if action is not None}
    print(f"{len(actions)} decisions recorded, carrying run id(s): {sorted(run_ids)}")


if __name__ == "__main__":
    main()
