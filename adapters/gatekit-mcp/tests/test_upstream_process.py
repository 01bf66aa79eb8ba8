"""The proxy's own stdio connection to an upstream process: framing, errors, limits
and shutdown, against real child processes."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import anyio
import pytest
from gatekit_mcp import upstream_process
from gatekit_mcp._compat import message_wire, stdio_upstream, to_upstream

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not upstream_process.is_posix(), reason="POSIX only"),
]

BIG = 3_000_000  # characters of one result: well over the threaded-parse size


def writer(*lines: str, then: str = "sys.stdin.read()") -> list[str]:
    """A child that writes ``lines`` to stdout (raw, as given; ``BIG_TEXT`` in one
    stands for ``BIG`` x's, made by the child: too long for a command line), then
    runs ``then`` (by default: waits for the end of its input)."""
    output = "".join(lines)
    script = (
        f"import sys; sys.stdout.write({output!r}.replace('BIG_TEXT', 'x' * {BIG})); "
        f"sys.stdout.flush(); {then}"
    )
    return [sys.executable, "-c", script]


def answer(request_id: int, text: str) -> str:
    result = {"content": [{"type": "text", "text": text}]}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}) + "\n"


async def received(read: Any, count: int) -> list[Any]:
    items = []
    with anyio.fail_after(30):
        for _ in range(count):
            items.append(await read.receive())
    return items


async def test_a_large_line_arrives_whole_between_small_ones() -> None:
    command = writer(answer(1, "a"), answer(2, "BIG_TEXT"), answer(3, "b"))
    async with stdio_upstream(command) as (read, _write):
        items = await received(read, 3)
    texts = [message_wire(item)["result"]["content"][0]["text"] for item in items]
    assert texts == ["a", "x" * BIG, "b"]


async def test_a_line_that_is_not_a_message_is_an_error_item_and_reading_goes_on() -> None:
    async with stdio_upstream(writer("not json\n", answer(4, "after"))) as (read, _write):
        bad, good = await received(read, 2)
    assert isinstance(bad, ValueError)
    assert message_wire(good)["id"] == 4


async def test_the_end_of_output_ends_the_read_stream_and_drops_a_partial_line() -> None:
    command = writer(answer(5, "last"), '{"jsonrpc": "2.0", "id": 6', then="pass")
    async with stdio_upstream(command) as (read, _write):
        (item,) = await received(read, 1)
        with anyio.fail_after(30), pytest.raises(anyio.EndOfStream):
            await read.receive()
    assert message_wire(item)["id"] == 5


async def test_a_line_over_the_limit_ends_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream_process, "MESSAGE_LIMIT", 100_000)
    async with stdio_upstream(writer(answer(7, "BIG_TEXT"), answer(8, "z"))) as (read, _):
        with anyio.fail_after(30), pytest.raises(anyio.EndOfStream):
            await read.receive()  # neither the overlong message nor the one after it


async def test_messages_reach_the_server_one_per_line() -> None:
    echo = "import sys\nfor line in sys.stdin: sys.stdout.write(line); sys.stdout.flush()"
    message = {"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": "t"}}
    async with stdio_upstream([sys.executable, "-c", echo]) as (read, write):
        await write.send(to_upstream(message))
        (item,) = await received(read, 1)
    assert message_wire(item) == message


async def test_a_server_that_ignores_the_end_of_its_input_and_sigterm_is_killed() -> None:
    stubborn = (
        "import json, os, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "note = {'jsonrpc': '2.0', 'method': 'pid', 'params': {'pid': os.getpid()}}\n"
        "print(json.dumps(note), flush=True)\n"
        "time.sleep(60)\n"
    )
    async with stdio_upstream([sys.executable, "-c", stubborn]) as (read, _write):
        (item,) = await received(read, 1)
    pid = message_wire(item)["params"]["pid"]
    with pytest.raises(ProcessLookupError):  # killed and reaped when the connection closed
        os.kill(pid, 0)
