"""Put gatekit in front of an MCP server: list tools, one allowed and one blocked call.

    python examples/mcp_proxy.py

The client below talks MCP over stdio to ``gatekit-mcp proxy``, which starts
the upstream server (examples/mcp_upstream/records_server.py) and gates every
tools/call. Per-tool action fields come from a small YAML config, and the
decisions from a policy file (``--policy``).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

HERE = Path(__file__).parent

TOOLS_YAML = """\
default: {risk_level: medium, operation_class: execute}
tools:
  get_weather: {risk_level: low, operation_class: read, data_sensitivity: public}
  delete_records: {risk_level: high, operation_class: delete, systems_touched: [records-db]}
on_review: refuse
"""

POLICY_YAML = """\
version: 1
default: review
rules:
  - id: no-deletes
    match: {operations: [delete]}
    verdict: block
    reason: this agent may not delete data
  - id: low-risk-reads
    match: {operations: [read], risk_levels: [low]}
    verdict: allow
    reason: low-risk read
"""


def text_of(result: object) -> str:
    content = getattr(result, "content", [])
    return " ".join(getattr(block, "text", "") for block in content)


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config, policy = Path(tmp) / "tools.yaml", Path(tmp) / "policy.yaml"
        config.write_text(TOOLS_YAML)
        policy.write_text(POLICY_YAML)
        proxy = StdioServerParameters(
            command=sys.executable,
            args=[
                "-m", "gatekit_mcp", "proxy",
                "--config", str(config),
                "--pins", str(Path(tmp) / "pins.json"),
                "--policy", str(policy),
                "--", sys.executable, str(HERE / "mcp_upstream" / "records_server.py"),
            ],
        )  # fmt: skip
        async with stdio_client(proxy) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            tools = [tool.name for tool in (await session.list_tools()).tools]
            print(f"tools the model sees: {tools}")  # delete_records is hidden: always blocked

            weather = await session.call_tool("get_weather", {"city": "Lisbon"})
            structured = getattr(weather, "structuredContent", None) or getattr(
                weather, "structured_content", None
            )
            print(f"get_weather -> {text_of(weather)!r} structured={structured}")

            # A misbehaving client calls the hidden tool anyway: it is still gated.
            deleted = await session.call_tool("delete_records", {"table": "customers"})
            error = getattr(deleted, "isError", None) or getattr(deleted, "is_error", None)
            print(f"delete_records -> isError={error}: {text_of(deleted)}")
            assert structured == {"city": "Lisbon", "celsius": 21.5}
            assert error
            assert "may not delete" in text_of(deleted)


if __name__ == "__main__":
    anyio.run(main)
