"""McpToolBoundary: the gate for hosts and routers that dispatch tool calls themselves."""

from __future__ import annotations

from typing import Any

import pytest
from gatekit_mcp import McpToolBoundary
from gatekit_mcp._compat import CallToolResult
from mcp_harness import wire

from gatekit import AsyncClient, BackendError, Blocked, Client, PendingReview, ValidationError
from gatekit.adapters import Refusal
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
    gate = boundary(
        backend,
        tools={"rm": {"risk_level": "medium", "operation_class": "delete"}},
        default={"risk_level": "low", "operation_class": "read"},
    )
    gate.invoke(
        tool_name="rm",
        arguments={"path": "x"},
        handler=lambda a: None,
        data_sensitivity="confidential",
        metadata={"ticket": "T-1"},
    )
    gate.invoke(tool_name="ls", arguments={}, handler=lambda a: None)
    rm, ls = (request.action for request in backend.requests)
    assert (rm.risk_level.value, rm.operation_class.value) == ("medium", "delete")
    assert rm.data_sensitivity.value == "confidential"
    assert rm.metadata["ticket"] == "T-1"
    assert rm.metadata["mcp"]["server"] == "files"
    assert (ls.risk_level.value, ls.operation_class.value) == ("low", "read")
    assert ls.systems_touched == ["files"]


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
        boundary(backend, on_review="refuse").invoke(
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
    assert backend.outcome(decision_id).status == "error"  # type: ignore[attr-defined]


def test_on_denied_message_returns_the_refusal_as_an_error_result() -> None:
    backend = MockBackend(verdicts={"rm": "block"})
    ran: list[str] = []
    with capture_decisions() as decisions:
        result = boundary(backend, on_denied="message").invoke(
            tool_name="rm", arguments={}, handler=lambda a: ran.append("x")
        )
    assert isinstance(result, CallToolResult)
    assert wire(result)["isError"] is True
    expected = Refusal.of("rm", Blocked(decisions.last)).message
    assert wire(result)["content"] == [{"type": "text", "text": expected}]
    assert wire(result)["_meta"]["gatekit/decision"]["decision_id"] == decisions.last.decision_id
    assert ran == []


async def test_ainvoke_on_denied_message_hides_backend_internals() -> None:
    backend = MockBackend(default="allow")
    backend.fail_with = RuntimeError("secret internal detail")
    gate = McpToolBoundary(server_name="files", client=AsyncClient(backend), on_denied="message")
    result = await gate.ainvoke(tool_name="ls", arguments={}, handler=lambda a: "ran")
    assert isinstance(result, CallToolResult)
    assert "could not get a decision for tool 'ls'" in wire(result)["content"][0]["text"]
    assert "secret internal detail" not in str(wire(result))


def test_a_refused_review_retried_after_approval_runs_once() -> None:
    backend = MockBackend(verdicts={"send": "review"})
    gate = boundary(backend, on_review="refuse")
    sent: list[dict[str, Any]] = []

    def send() -> object:
        return gate.invoke(tool_name="send", arguments={"to": "bob"}, handler=sent.append)

    with pytest.raises(PendingReview) as first:
        send()
    with pytest.raises(PendingReview) as retried:
        send()
    assert retried.value.approval_id == first.value.approval_id  # the same review, not a new one
    backend.approve(first.value.approval_id or "", reviewer="alice")
    send()
    with pytest.raises(PendingReview) as after_use:  # approvals are single-use
        send()
    assert after_use.value.approval_id != first.value.approval_id
    assert sent == [{"to": "bob"}]


def test_a_gatekit_error_from_the_handler_is_not_a_refusal_of_this_call() -> None:
    backend = MockBackend(default="allow")
    inner = ValidationError("the handler's own check failed", field="path")

    def handler(arguments: dict[str, Any]) -> None:
        raise inner  # e.g. from a gatekit call the handler makes itself

    with pytest.raises(ValidationError) as caught:
        boundary(backend, on_denied="message").invoke(tool_name="ls", handler=handler)
    assert caught.value is inner
    decision_id = backend.store.list()[0].decision_id
    assert backend.outcome(decision_id).status == "error"  # type: ignore[union-attr]
