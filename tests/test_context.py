from __future__ import annotations

import anyio

from gatekit import AsyncClient, Client
from gatekit._context import RunContext, run_context
from gatekit.testing import MockBackend


def test_run_context_flows_into_requests() -> None:
    backend = MockBackend()
    with run_context(RunContext(run_id="run-1", agent_id="planner", session_id="s-9")):
        Client(backend).decide(tool="t")
    Client(backend, agent_id="fallback").decide(tool="t")
    inside, outside = (r.action for r in backend.requests)
    assert (inside.run_id, inside.agent_id, inside.session_id) == ("run-1", "planner", "s-9")
    assert (outside.run_id, outside.agent_id) == (None, "fallback")


def test_run_context_follows_async_tasks() -> None:
    backend = MockBackend()

    async def main() -> None:
        client = AsyncClient(backend)
        with run_context(RunContext(run_id="run-2")):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.decide, "ignored-positional-is-not-allowed") if False else None
                tg.start_soon(lambda: client.decide(tool="a"))
                tg.start_soon(lambda: client.decide(tool="b"))

    anyio.run(main)
    assert {r.action.run_id for r in backend.requests} == {"run-2"}


def test_explicit_fields_win_over_context() -> None:
    backend = MockBackend()
    with run_context(RunContext(run_id="run-1", agent_id="planner")):
        Client(backend).decide(tool="t", agent_id="worker", run_id="mine")
    assert (backend.requests[0].action.agent_id, backend.requests[0].action.run_id) == (
        "worker",
        "mine",
    )
