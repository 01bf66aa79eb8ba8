"""End to end over real stdio: MCP client -> gatekit proxy (subprocess) -> upstream FastMCP."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest
from mcp_harness import direct, proxied, ran, wire

pytestmark = pytest.mark.anyio


def text_of(result: object) -> str:
    return " ".join(block["text"] for block in wire(result)["content"])  # type: ignore[arg-type]


async def test_allowed_calls_return_the_upstream_result_unchanged(tmp_path: Path) -> None:
    async with direct(tmp_path) as session:
        expected_tools = wire(await session.list_tools())
        expected_add = wire(await session.call_tool("add", {"a": 2, "b": 3}))
        expected_echo = wire(await session.call_tool("echo", {"text": "hi"}))
    async with proxied(tmp_path) as session:
        assert wire(await session.list_tools()) == expected_tools
        add = wire(await session.call_tool("add", {"a": 2, "b": 3}))
        echo = wire(await session.call_tool("echo", {"text": "hi"}))
    assert add == expected_add
    assert add["structuredContent"] == {"total": 5, "note": "2+3"}
    assert echo == expected_echo
    assert ran(tmp_path) == ["add", "echo", "add", "echo"]


async def test_resources_and_prompts_are_forwarded(tmp_path: Path) -> None:
    async def snapshot(session: object) -> list[dict[str, object]]:
        s = session  # ClientSession
        return [
            wire(await s.list_resources()),  # type: ignore[attr-defined]
            wire(await s.list_resource_templates()),  # type: ignore[attr-defined]
            wire(await s.read_resource("data://greeting")),  # type: ignore[attr-defined]
            wire(await s.list_prompts()),  # type: ignore[attr-defined]
            wire(await s.get_prompt("summarize", {"topic": "MCP"})),  # type: ignore[attr-defined]
        ]

    async with direct(tmp_path) as session:
        expected = await snapshot(session)
    async with proxied(tmp_path) as session:
        assert await snapshot(session) == expected
    assert expected[2]["contents"][0]["text"] == "hello from upstream"  # type: ignore[index]


async def test_a_blocked_call_is_an_error_result_and_the_tool_never_runs(tmp_path: Path) -> None:
    async with proxied(tmp_path, {"hide_blocked_tools": False}, block=["delete_everything"]) as s:
        listed = [tool.name for tool in (await s.list_tools()).tools]
        result = await s.call_tool("delete_everything", {"confirm": True})
        after = await s.call_tool("echo", {"text": "still alive"})  # the session survives
    assert "delete_everything" in listed
    assert result.isError if hasattr(result, "isError") else result.is_error  # type: ignore[attr-defined]
    assert "gatekit did not run tool 'delete_everything': blocked by policy" in text_of(result)
    assert "delete_everything is not allowed for this agent" in text_of(result)
    assert text_of(after) == "still alive"
    assert ran(tmp_path) == ["echo"]


async def test_tools_policy_always_blocks_are_hidden_from_the_list(tmp_path: Path) -> None:
    async with proxied(tmp_path, block=["delete_everything"]) as session:
        listed = [tool.name for tool in (await session.list_tools()).tools]
        result = await session.call_tool("delete_everything", {})  # hidden, still gated
    assert "delete_everything" not in listed
    assert {"echo", "add"} <= set(listed)
    assert "blocked by policy" in text_of(result)
    assert ran(tmp_path) == []


async def test_no_valid_decision_fails_closed(tmp_path: Path) -> None:
    async with proxied(tmp_path, backend="gk_mcp_test_policy:make_broken_backend") as session:
        result = await session.call_tool("echo", {"text": "x"})
    assert "could not get a decision for tool 'echo'" in text_of(result)
    assert "decision store unavailable" not in text_of(result)  # internals stay in the log
    assert ran(tmp_path) == []


def is_error(result: object) -> bool:
    return bool(wire(result).get("isError"))  # type: ignore[arg-type]


async def test_a_changed_tool_description_is_caught(tmp_path: Path) -> None:
    async with proxied(tmp_path) as session:  # first sight: pinned
        assert "echo" in [tool.name for tool in (await session.list_tools()).tools]
        assert not is_error(await session.call_tool("echo", {"text": "v1"}))
    async with proxied(tmp_path, variant="changed") as session:  # the upstream changed echo
        listed = [tool.name for tool in (await session.list_tools()).tools]
        changed = await session.call_tool("echo", {"text": "v2"})
        other = await session.call_tool("add", {"a": 1, "b": 1})
    assert "echo" not in listed  # the new description never reaches the model
    assert is_error(changed)
    assert "mcp.tool_definition_changed" in text_of(changed)
    assert not is_error(other)
    assert ran(tmp_path) == ["echo", "add"]

    pins = str(tmp_path / "pins.json")
    command = [sys.executable, "-m", "gatekit_mcp", "pins", "approve", "echo", "--pins", pins]
    approve = await anyio.run_process(command, check=False)
    assert approve.returncode == 0, approve.stderr.decode()
    async with proxied(tmp_path, variant="changed") as session:
        # Approved, it runs; its new description speaks to the model, so the
        # injection shield still keeps it out of the list.
        assert "echo" not in [tool.name for tool in (await session.list_tools()).tools]
        assert text_of(await session.call_tool("echo", {"text": "v2"})) == "v2"
    warn_only = {"shields": {"injection": "warn"}}
    async with proxied(tmp_path, warn_only, variant="changed") as session:
        assert "echo" in [tool.name for tool in (await session.list_tools()).tools]
    assert ran(tmp_path) == ["echo", "add", "echo"]


async def test_a_pending_review_reports_progress_then_returns_the_approval_id(
    tmp_path: Path,
) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    config = {"review_timeout": 1.0, "review_progress_interval": 0.2}
    async with proxied(tmp_path, config, review=["add"]) as session:
        result = await session.call_tool("add", {"a": 1, "b": 2}, progress_callback=on_progress)
    assert is_error(result)
    assert "no reviewer decided in time" in text_of(result)
    assert "(approval apr_" in text_of(result)
    assert wire(result)["_meta"]["gatekit/decision"]["status"] == "pending_review"
    assert progress, "the client asked for progress and got none"
    assert all("waiting for human review" in (message or "") for _, _, message in progress)
    assert [value for value, _, _ in progress] == sorted(value for value, _, _ in progress)
    assert ran(tmp_path) == []


async def test_result_shields_redact_secrets_and_withhold_injections(tmp_path: Path) -> None:
    async with proxied(tmp_path) as session:
        config = await session.call_tool("read_config", {})
        page = await session.call_tool("fetch_page", {"url": "https://example.test"})
    assert "AKIAABCDEFGHIJKLMNOP" not in text_of(config)
    assert "[REDACTED:aws_access_key]" in text_of(config)
    assert "region=eu-west-1" in text_of(config)
    assert is_error(page)
    assert "withheld" in text_of(page)
    assert "Ignore all previous" not in text_of(page)
    assert ran(tmp_path) == ["read_config", "fetch_page"]  # both ran; the results were shielded


async def test_result_shields_are_configurable(tmp_path: Path) -> None:
    config = {"shields": {"secrets": "block", "injection": "redact"}}
    async with proxied(tmp_path, config) as session:
        secret = await session.call_tool("read_config", {})
        page = await session.call_tool("fetch_page", {"url": "https://example.test"})
    assert is_error(secret)
    assert "AKIA" not in text_of(secret)
    assert not is_error(page)
    assert "[REDACTED:prompt_injection]" in text_of(page)
    assert "Ignore all previous instructions" not in text_of(page)


async def test_upstream_progress_reaches_the_client(tmp_path: Path) -> None:
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))

    async with proxied(tmp_path) as session:
        result = await session.call_tool("count", {"to": 3}, progress_callback=on_progress)
    assert text_of(result) == "counted to 3"
    assert progress == [(1, 3, "counted 1"), (2, 3, "counted 2"), (3, 3, "counted 3")]
