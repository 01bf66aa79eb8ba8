"""``--policy FILE`` end to end, once the core reads policy files (GATEKIT_POLICY)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp_harness import UPSTREAM, harness_env, proxy_args, ran, session_for, wire

from gatekit import Settings

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(
        "policy" not in Settings.model_fields, reason="this gatekit-core has no policy files"
    ),
]

POLICY = """\
version: 1
default: allow
rules:
  - id: no-deletes
    match: {tools: [delete_everything]}
    verdict: block
    reason: deleting is not for agents
  - id: no-big-sums
    match: {tools: [add]}
    when: args.a > 100
    verdict: block
    reason: big sums need the finance system
"""


def text_of(result: object) -> str:
    return " ".join(block["text"] for block in wire(result)["content"])  # type: ignore[arg-type]


async def test_the_proxy_decides_with_the_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    config = {"default": {"risk_level": "low"}}
    args = proxy_args(tmp_path, config, upstream=[])
    args = [*args[: args.index("--backend-factory")], "--policy", str(policy)]
    args += ["--", sys.executable, str(UPSTREAM)]
    async with session_for(args, harness_env(tmp_path)) as session:
        listed = {tool.name for tool in (await session.list_tools()).tools}
        small = await session.call_tool("add", {"a": 1, "b": 2})
        big = await session.call_tool("add", {"a": 500, "b": 1})
        deleted = await session.call_tool("delete_everything", {})
    assert "delete_everything" not in listed  # blocked whatever the arguments
    assert "add" in listed  # blocked only for some arguments: shown
    assert wire(small)["structuredContent"] == {"total": 3, "note": "1+2"}
    assert "big sums need the finance system" in text_of(big)
    assert "deleting is not for agents" in text_of(deleted)
    assert ran(tmp_path) == ["add"]
