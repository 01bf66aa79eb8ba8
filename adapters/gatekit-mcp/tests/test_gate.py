"""The gating proxy in-process, against the real upstream test server over stdio."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from gatekit_mcp import gate as gate_module
from gatekit_mcp._compat import ToolCall
from gatekit_mcp.gate import OFF_LOOP_CHARS
from gk_mcp_test_policy import ToolListPolicy
from mcp_harness import call, gating_proxy, ran, text

from gatekit import CheckOutcome, Decision, DecisionRequest, LocalBackend, Status, Verdict
from gatekit.policy import Evaluation
from gatekit.testing import MockBackend

pytestmark = pytest.mark.anyio


async def test_actions_carry_the_configured_fields_and_the_mcp_context(tmp_path: Path) -> None:
    backend = MockBackend(default="allow")
    config = {
        "toolset": "fs-v1",
        "default": {"risk_level": "low", "data_sensitivity": "public"},
        "tools": {"add": {"operation_class": "read", "systems_touched": ["calculator"]}},
    }
    async with gating_proxy(tmp_path, backend, config) as proxy:
        result = await proxy.call_tool(call("add", a=1, b=2))
        await proxy.call_tool(call("echo", text="x"))
    assert result["structuredContent"] == {"total": 3, "note": "1+2"}
    add, echo = (request.action for request in backend.requests)
    assert (add.tool, add.arguments) == ("add", {"a": 1, "b": 2})
    assert (add.risk_level.value, add.operation_class.value) == ("low", "read")
    assert add.data_sensitivity.value == "public"
    assert add.systems_touched == ["calculator"]
    assert echo.systems_touched == ["upstream-test"]  # defaults to the server name
    assert echo.metadata["mcp"] == {
        "server": "upstream-test",
        "toolset": "fs-v1",
        "client": "test-host",
    }


async def test_a_retry_after_approval_runs_the_approved_call(tmp_path: Path) -> None:
    backend = MockBackend(verdicts={"add": "review"})
    config = {"on_review": "refuse"}
    async with gating_proxy(tmp_path, backend, config) as proxy:
        first = await proxy.call_tool(call("add", a=1, b=2))
        approval_id = first["_meta"]["gatekit/decision"]["approval_id"]
        still_pending = await proxy.call_tool(call("add", a=1, b=2))
        other_args = await proxy.call_tool(call("add", a=9, b=9))  # a different action
        backend.approve(approval_id, reviewer="alice")
        approved = await proxy.call_tool(call("add", a=1, b=2))
        again = await proxy.call_tool(call("add", a=1, b=2))  # approvals are single-use
    assert first["isError"]
    assert approval_id in text(first)
    assert still_pending["_meta"]["gatekit/decision"]["approval_id"] == approval_id
    assert other_args["_meta"]["gatekit/decision"]["approval_id"] != approval_id
    assert approved["structuredContent"] == {"total": 3, "note": "1+2"}
    assert again["isError"]
    assert "waits for human review" in text(again)
    assert ran(tmp_path) == ["add"]


async def wait_until_pending(backend: MockBackend) -> str:
    """Play the reviewer's inbox: poll until a review shows up (a human would look)."""
    while not backend.pending():  # noqa: ASYNC110  (the backend has no event to wait on)
        await anyio.sleep(0.02)
    return backend.pending()[0].approval_id or ""


async def test_a_review_rejected_while_waiting_is_refused(tmp_path: Path) -> None:
    backend = MockBackend(verdicts={"echo": "review"})
    config = {"review_timeout": 10, "review_progress_interval": 0.05}
    progress: list[float] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(value)

    async def reviewer() -> None:
        approval_id = await wait_until_pending(backend)
        await anyio.sleep(0.2)
        backend.reject(approval_id, reviewer="bob", comment="no")

    async with gating_proxy(tmp_path, backend, config) as proxy, anyio.create_task_group() as tg:
        tg.start_soon(reviewer)
        result = await proxy.call_tool(
            ToolCall(name="echo", arguments={"text": "x"}, progress=on_progress)
        )
    assert result["isError"]
    assert "rejected" in text(result)
    assert "bob" in text(result)
    assert progress  # waited, and said so
    assert ran(tmp_path) == []


async def test_a_review_approved_while_waiting_runs(tmp_path: Path) -> None:
    backend = MockBackend(verdicts={"echo": "review"})

    async def reviewer() -> None:
        backend.approve(await wait_until_pending(backend), reviewer="alice")

    config = {"review_timeout": 10}
    async with gating_proxy(tmp_path, backend, config) as proxy, anyio.create_task_group() as tg:
        tg.start_soon(reviewer)
        result = await proxy.call_tool(call("echo", text="approved"))
    assert text(result) == "approved"
    assert ran(tmp_path) == ["echo"]


async def test_a_changed_definition_can_be_flagged_without_blocking(tmp_path: Path) -> None:
    backend = MockBackend(default="allow")
    async with gating_proxy(tmp_path, backend) as proxy:
        await proxy.list_tools({})
    # The changed description speaks to the model: the injection shield only warns
    # here, so that what is seen is what the pins do.
    config = {"pins": {"block_changed": False}, "shields": {"injection": "warn"}}
    async with gating_proxy(tmp_path, backend, config, variant="changed") as proxy:
        listed = [tool["name"] for tool in (await proxy.list_tools({}))["tools"]]
        result = await proxy.call_tool(call("echo", text="x"))
    assert "echo" in listed
    assert text(result) == "x"
    request = backend.requests[-1]
    assert request.action.metadata["mcp_pin"]["state"] == "changed"
    flagged = [c for c in request.client_checks if c.name == "mcp.tool_definition_changed"]
    assert [c.outcome for c in flagged] == [CheckOutcome.WARN]


async def test_a_call_without_a_prior_list_still_checks_the_pin(tmp_path: Path) -> None:
    backend = MockBackend(default="allow")
    async with gating_proxy(tmp_path, backend) as proxy:
        await proxy.call_tool(call("echo", text="pin me"))
    async with gating_proxy(tmp_path, backend, variant="changed") as proxy:
        result = await proxy.call_tool(call("echo", text="x"))
    assert result["isError"]
    assert "changed since it was pinned" in text(result)
    assert backend.requests[-1].action.metadata["mcp_pin"]["state"] == "changed"
    assert ran(tmp_path) == ["echo"]


async def test_only_tools_policy_always_blocks_are_hidden(tmp_path: Path) -> None:
    policy = ToolListPolicy(block={"delete_everything"}, review={"echo"})
    backend = LocalBackend(policy=policy)
    async with gating_proxy(tmp_path, backend) as proxy:
        shown = {tool["name"] for tool in (await proxy.list_tools({}))["tools"]}
        decisions_made = len(backend.store.list(Status.BLOCKED))
    assert "delete_everything" not in shown
    assert {"echo", "add", "read_config", "fetch_page"} <= shown
    assert decisions_made == 0  # the probe is a dry run: nothing recorded


async def test_an_invalid_action_is_refused_without_running(tmp_path: Path) -> None:
    backend = MockBackend(default="allow")
    async with gating_proxy(tmp_path, backend) as proxy:
        result = await proxy.call_tool(call("add", a=float("nan"), b=1))
    assert result["isError"]
    assert "the call is invalid" in text(result)
    assert ran(tmp_path) == []


async def test_result_findings_are_reported_with_the_outcome(tmp_path: Path) -> None:
    backend = MockBackend(default="allow")
    async with gating_proxy(tmp_path, backend) as proxy:
        result = await proxy.call_tool(call("read_config"))
    assert "[REDACTED:aws_access_key]" in text(result)
    decision_id = backend.store.list()[0].decision_id
    outcome = backend.outcome(decision_id)
    assert outcome is not None
    assert outcome.status == "success"
    assert "secret:aws_access_key@result.content[0].text" in outcome.detail


async def test_an_approved_review_is_found_by_the_retry_after_a_proxy_restart(
    tmp_path: Path,
) -> None:
    policy = ToolListPolicy(review={"add"})
    config = {"on_review": "refuse"}
    before = LocalBackend(policy=policy)  # durable, in this test's data dir
    async with gating_proxy(tmp_path, before, config) as proxy:
        first = await proxy.call_tool(call("add", a=1, b=2))
    before.close()
    approval_id = first["_meta"]["gatekit/decision"]["approval_id"]

    reviewer = LocalBackend(policy=policy)  # e.g. `gatekit approvals approve`, elsewhere
    reviewer.approve(approval_id, reviewer="alice")
    reviewer.close()

    after = LocalBackend(policy=policy)  # a new proxy process: nothing kept in memory
    async with gating_proxy(tmp_path, after, config) as proxy:
        retried = await proxy.call_tool(call("add", a=1, b=2))
        again = await proxy.call_tool(call("add", a=1, b=2))
    after.close()
    assert first["isError"]
    assert retried["structuredContent"] == {"total": 3, "note": "1+2"}
    assert again["isError"]  # the approval was used up: a new review
    assert again["_meta"]["gatekit/decision"]["approval_id"] != approval_id
    assert ran(tmp_path) == ["add"]


class _NoPreview(LocalBackend):
    """A backend that cannot do a dry run."""

    def preview(self, request: DecisionRequest) -> Decision:
        raise NotImplementedError("no dry run here")


class _RateLimitedAdd(ToolListPolicy):
    def evaluate(self, request: DecisionRequest) -> Evaluation:
        if request.action.tool == "add":
            return Evaluation(Verdict.BLOCK, "3 sums a minute", ("t.rate",), retry_after=42.0)
        return super().evaluate(request)


async def test_the_list_hides_what_policy_blocks_never_a_high_risk_tool_it_allows(
    tmp_path: Path,
) -> None:
    policy = ToolListPolicy(block={"delete_everything"})
    config = {"tools": {"echo": {"risk_level": "critical"}}, "on_review": "refuse"}
    backend = LocalBackend(policy=policy)
    async with gating_proxy(tmp_path, backend, config) as proxy:
        shown = {tool["name"] for tool in (await proxy.list_tools({}))["tools"]}
        recorded = backend.store.list()
        echo = await proxy.call_tool(call("echo", text="x"))
    assert "delete_everything" not in shown
    assert "echo" in shown  # allowed by policy; the risk floor makes it a review, not a block
    assert recorded == []  # previews are dry runs
    assert echo["_meta"]["gatekit/decision"]["status"] == "pending_review"
    assert ran(tmp_path) == []


async def test_a_rate_limited_tool_stays_listed_and_its_refusal_says_when_to_retry(
    tmp_path: Path,
) -> None:
    backend = LocalBackend(policy=_RateLimitedAdd(block=set(), review=set()))
    async with gating_proxy(tmp_path, backend) as proxy:
        shown = {tool["name"] for tool in (await proxy.list_tools({}))["tools"]}
        result = await proxy.call_tool(call("add", a=1, b=2))
    assert "add" in shown  # a limit passes with time
    assert "rate limited: 3 sums a minute (retry after 42 s)" in text(result)
    assert ran(tmp_path) == []


async def test_a_backend_without_a_dry_run_hides_nothing(tmp_path: Path) -> None:
    backend = _NoPreview(policy=ToolListPolicy(block={"delete_everything"}))
    async with gating_proxy(tmp_path, backend) as proxy:
        shown = {tool["name"] for tool in (await proxy.list_tools({}))["tools"]}
        result = await proxy.call_tool(call("delete_everything"))
    assert "delete_everything" in shown
    assert "blocked by policy" in text(result)  # still gated
    assert ran(tmp_path) == []


async def test_result_shields_run_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, released = threading.Event(), threading.Event()
    real = gate_module.shield_result

    def held_shield(result: Any, config: Any) -> Any:
        entered.set()
        released.wait(10)  # held until the event loop served a ping meanwhile
        return real(result, config)

    monkeypatch.setattr(gate_module, "shield_result", held_shield)
    order: list[str] = []
    async with gating_proxy(tmp_path, MockBackend(default="allow")) as proxy:

        async def tool_call() -> None:
            large = "x" * (OFF_LOOP_CHARS + 1)  # a small result is scanned in place
            await proxy.call_tool(call("echo", text=large))
            order.append("call")

        async with anyio.create_task_group() as group:
            group.start_soon(tool_call)
            await anyio.to_thread.run_sync(entered.wait, 10)
            await proxy.upstream.request("ping")
            order.append("ping")
            released.set()
    assert order == ["ping", "call"]
