"""McpToolBoundary: the gate for hosts and routers that dispatch tool calls themselves."""

from __future__ import annotations

from typing import Any

import pytest
from gatekit_mcp import McpToolBoundary

from gatekit import AsyncClient, BackendError, Blocked, Client, PendingReview
from gatekit.testing import MockBackend, capture_decisions

pytestmark = pytest.mark.anyio


def boundary(backend: MockBackend, **options: Any) -> McpToolBoundary:
    return McpToolBoundary(
        server_name="files",
        toolset_id="fs-v1",
        client=Client(backend),
        client_name="my-host",
        **options,
    )


def test_an_allowed_call_runs_the_handler_with_the_arguments() -> None:
    backend = MockBackend(default="allow")
    seen: list[dict[str, Any]] = []

    def handler(arguments: dict[str, Any]) -> str:
        seen.append(arguments)
        return "contents"

    result = boundary(backend).invoke(
        tool_name="read_file", arguments={"path": "a.txt"}, handler=handler, risk_level="low"
    )
    assert result == "contents"
    assert seen == [{"path": "a.txt"}]
    action = backend.requests[0].action
    assert action.tool == "read_file"
    assert action.risk_level.value == "low"
    assert action.systems_touched == ["files"]
    assert action.metadata == {"mcp": {"server": "files", "toolset": "fs-v1", "client": "my-host"}}


def test_per_tool_defaults_and_call_fields_merge() -> None:
    backend = MockBackend(default="allow")
    gate = boundary(backend, tools={"rm": {"risk_level": "high", "operation_class": "delete"}})
    action = gate.action("rm", {"path": "x"}, risk_level="critical", metadata={"ticket": "T-1"})
    assert (action.risk_level.value, action.operation_class.value) == ("critical", "delete")
    assert action.metadata["ticket"] == "T-1"
    assert action.metadata["mcp"]["server"] == "files"


def test_a_blocked_call_never_runs_the_handler() -> None:
    backend = MockBackend(verdicts={"rm": "block"})
    ran: list[str] = []
    with pytest.raises(Blocked), capture_decisions() as decisions:
        boundary(backend).invoke(tool_name="rm", arguments={}, handler=lambda a: ran.append("x"))
    assert ran == []
    assert decisions.last.status.value == "blocked"


def test_a_crashing_backend_never_runs_the_handler() -> None:
    backend = MockBackend(default="allow")
    backend.fail_with = RuntimeError("engine down")
    ran: list[str] = []
    with pytest.raises(BackendError, match="engine down"):
        boundary(backend).invoke(tool_name="ls", arguments={}, handler=lambda a: ran.append("x"))
    assert ran == []


def test_a_pending_review_without_waiting_raises_with_the_approval_id() -> None:
    backend = MockBackend(verdicts={"send": "review"})
    ran: list[str] = []
    with pytest.raises(PendingReview) as caught:
        boundary(backend, wait=False).invoke(
            tool_name="send", arguments={}, handler=lambda a: ran.append("x")
        )
    assert caught.value.approval_id
    assert ran == []


async def test_ainvoke_runs_async_and_sync_handlers_when_allowed() -> None:
    backend = MockBackend(default="allow")
    gate = McpToolBoundary(server_name="files", client=AsyncClient(backend))

    async def read(arguments: dict[str, Any]) -> str:
        return f"read {arguments['path']}"

    assert await gate.ainvoke(tool_name="read", arguments={"path": "a"}, handler=read) == "read a"
    assert await gate.ainvoke(tool_name="size", arguments={}, handler=lambda a: 42) == 42
    assert backend.requests[0].action.metadata == {"mcp": {"server": "files"}}


async def test_ainvoke_blocked_and_crashing_backends_never_run_the_handler() -> None:
    backend = MockBackend(verdicts={"rm": "block"})
    gate = McpToolBoundary(server_name="files", client=AsyncClient(backend))
    ran: list[str] = []

    async def handler(arguments: dict[str, Any]) -> None:
        ran.append("x")

    with pytest.raises(Blocked):
        await gate.ainvoke(tool_name="rm", arguments={}, handler=handler)
    backend.fail_with = RuntimeError("engine down")
    with pytest.raises(BackendError):
        await gate.ainvoke(tool_name="ls", arguments={}, handler=handler)
    assert ran == []


def test_a_handler_error_is_reported_and_raised() -> None:
    backend = MockBackend(default="allow")

    def broken(arguments: dict[str, Any]) -> None:
        raise ValueError("tool failed")

    with pytest.raises(ValueError, match="tool failed"):
        boundary(backend).invoke(tool_name="ls", arguments={}, handler=broken)
    decision_id = backend.store.list()[0].decision_id
    assert backend.store.outcome(decision_id).status == "error"  # type: ignore[attr-defined]
