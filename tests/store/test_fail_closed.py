"""No durable decision, no run: store and audit failures fail closed, on both stores."""

from __future__ import annotations

import pytest

from gatekit import AsyncClient, BackendError, Client, Status


def test_a_broken_store_means_the_tool_does_not_run(make_backend):
    backend = make_backend()
    client = Client(backend, agent_id="agent-1")
    ran = []

    @client.intercept(risk_level="low")
    def read() -> None:
        ran.append(1)

    backend.store.close()
    with pytest.raises(BackendError):
        read()
    assert ran == []


def test_a_failed_audit_write_rolls_back_the_decision(make_backend, db):
    backend = make_backend()
    with backend.store._write() as cur:
        cur.execute("DROP TABLE audit_records")
    client = Client(backend, agent_id="agent-1")
    ran = []
    with pytest.raises(BackendError), client.guard(tool="read", risk_level="low"):
        ran.append(1)
    assert ran == []
    assert backend.store.list() == []  # the decision went with its record


@pytest.mark.anyio
async def test_the_async_client_runs_on_a_durable_store(make_backend):
    backend = make_backend()
    ran = []
    client = AsyncClient(backend, agent_id="agent-1")
    async with client.guard(tool="read", risk_level="low", idempotency_key="k") as decision:
        ran.append(decision.status)
    await client.aclose()
    assert ran == [Status.ALLOWED]
    kinds = [r.kind for r in make_backend().store.audit_records()]
    assert kinds == ["decision", "consume", "outcome"]
