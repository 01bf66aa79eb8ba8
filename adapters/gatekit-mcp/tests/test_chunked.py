"""Large HTTP response bodies leave in pieces: the same bytes, the same end."""

from __future__ import annotations

from typing import Any

import pytest
from gatekit_mcp.chunked import PIECE, chunked_send

pytestmark = pytest.mark.anyio


async def sent_through(*messages: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        out.append(dict(message))

    send_in_pieces = chunked_send(send)
    for message in messages:
        await send_in_pieces(message)
    return out


@pytest.mark.parametrize("more_body", [True, False])
async def test_a_large_body_goes_out_in_pieces_with_the_same_bytes(more_body: bool) -> None:
    body = bytes(range(256)) * (PIECE // 100)  # 2.56 pieces
    out = await sent_through({"type": "http.response.body", "body": body, "more_body": more_body})
    assert len(out) == 3
    assert all(len(message["body"]) <= PIECE for message in out)
    assert b"".join(message["body"] for message in out) == body
    assert [message["more_body"] for message in out] == [True, True, more_body]


async def test_small_bodies_and_other_messages_pass_as_they_are() -> None:
    start = {"type": "http.response.start", "status": 200, "headers": []}
    small = {"type": "http.response.body", "body": b"x" * PIECE, "more_body": True}
    end = {"type": "http.response.body", "body": b""}
    assert await sent_through(start, small, end) == [start, small, end]
