"""The version shim: JSON-RPC messages to and from the installed SDK's transport items."""

from __future__ import annotations

from typing import Any

import pytest
from gatekit_mcp._compat import (
    HANDSHAKE_VERSIONS,
    MCP2,
    PROTOCOL_HEADER,
    message_line,
    message_wire,
    parse_line,
    to_client,
    to_upstream,
)
from gatekit_mcp.upstream import offered_version

MESSAGES: list[dict[str, Any]] = [
    {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "x", "arguments": {"a": None}},
    },
    {"jsonrpc": "2.0", "id": "s-1", "method": "ping"},
    {
        "jsonrpc": "2.0",
        "method": "notifications/progress",
        "params": {"progressToken": 1, "progress": 0.5},
    },
    {"jsonrpc": "2.0", "id": 7, "result": {"content": [], "structuredContent": {"v": None}}},
    {"jsonrpc": "2.0", "id": 8, "error": {"code": -32601, "message": "Method not found"}},
]


@pytest.mark.parametrize("message", MESSAGES)
def test_messages_travel_unchanged(message: dict[str, Any]) -> None:
    assert message_wire(to_client(message)) == message
    assert message_wire(to_upstream(message, "2025-06-18")) == message


@pytest.mark.parametrize("message", MESSAGES)
def test_stdio_lines_carry_messages_unchanged(message: dict[str, Any]) -> None:
    line = message_line(to_upstream(message))
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    parsed = parse_line(line)
    assert not isinstance(parsed, Exception)
    assert message_wire(parsed) == message


@pytest.mark.parametrize(
    "line", [b"", b"not json", b"\xff", b"[" * 100_000, b'{"jsonrpc": "2.0", "id": true}']
)
def test_a_stdio_line_that_is_not_a_message_is_an_error_item(line: bytes) -> None:
    assert isinstance(parse_line(line), ValueError | RecursionError)


def test_a_related_message_is_marked_for_its_request_stream() -> None:
    item = to_client({"jsonrpc": "2.0", "method": "notifications/message"}, related_request_id=3)
    assert item.metadata is not None
    assert item.metadata.related_request_id == 3  # type: ignore[union-attr]


def test_the_upstream_learns_the_protocol_version_where_the_sdk_needs_it() -> None:
    item = to_upstream({"jsonrpc": "2.0", "id": 1, "method": "ping"}, "2025-06-18")
    if MCP2:
        assert item.metadata.headers == {PROTOCOL_HEADER: "2025-06-18"}  # type: ignore[union-attr]
    else:
        assert item.metadata is None  # 1.x reads it from the initialize answer


def test_the_proxy_offers_only_versions_it_knows() -> None:
    assert "2025-06-18" in HANDSHAKE_VERSIONS
    assert offered_version("2025-06-18") == "2025-06-18"
    assert offered_version("2099-01-01") == HANDSHAKE_VERSIONS[-1]
    assert offered_version(None) == HANDSHAKE_VERSIONS[-1]
