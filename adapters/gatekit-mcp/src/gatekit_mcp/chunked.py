"""Large HTTP response bodies, written a piece at a time.

A 5 MB tool result leaves the proxy as one server-sent event, which the SDK's
transport hands to the ASGI server as one body message; the server then writes
it to the socket in one go (the HTTP framing copies it whole), holding the
event loop while another client's ping waits. Split into pieces with a
checkpoint between them, the same bytes go out while other tasks get their turn
after each piece (and the server's flow control can pause the writer between
pieces instead of buffering the whole body).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.lowlevel

__all__ = ["PIECE", "chunked_send"]

PIECE = 64 * 1024
"""Bytes of body per ASGI message, for bodies larger than this."""

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


def chunked_send(send: Send) -> Send:
    """``send`` (ASGI), with each response body message over ``PIECE`` bytes sent as
    pieces of at most ``PIECE`` bytes: the same body, the same ``more_body`` at its
    end."""

    async def send_in_pieces(message: Message) -> None:
        body = message.get("body")
        if message.get("type") != "http.response.body" or not body or len(body) <= PIECE:
            await send(message)
            return
        view = memoryview(body)
        last = message.get("more_body", False)
        for start in range(0, len(view), PIECE):
            end = start + PIECE
            piece = bytes(view[start:end])
            await send({**message, "body": piece, "more_body": end < len(view) or last})
            await anyio.lowlevel.checkpoint()

    return send_in_pieces
