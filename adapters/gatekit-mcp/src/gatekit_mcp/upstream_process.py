"""The proxy's stdio connection to an upstream server process (POSIX).

Same framing, messages and shutdown as the SDK's ``stdio_client`` (one JSON-RPC
message per line; a line that is not a message arrives as an exception item; at
the end: close the server's stdin, wait, then end its process group), with a
line reader that stays linear in the size of a line. Both SDKs re-join and
re-split everything buffered so far at each 64 KiB chunk they read, so a 5 MB
result costs them seconds of CPU in the event loop; here each byte is scanned for
the newline once (anyio's ``BufferedByteReceiveStream``).

A large line is parsed in a worker thread, so that another client's messages are
served meanwhile; a line over ``MESSAGE_LIMIT`` bytes ends the connection (the
proxy then fails what is in flight, as for a dead upstream) rather than buffering
without bound. The version-specific parts (parsing and writing a message) come
from ``_compat``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

__all__ = ["MESSAGE_LIMIT", "THREADED_PARSE", "stdio_connection"]

logger = logging.getLogger("gatekit_mcp")

MESSAGE_LIMIT = 64 * 1024 * 1024
"""Bytes of one line (one message) the proxy takes from a stdio upstream; the same
bound as for an HTTP upstream's events."""

THREADED_PARSE = 256 * 1024
"""Lines of at least this many bytes are parsed in a worker thread: parsing 5 MB
takes tens of milliseconds, which the event loop must not be held for."""

_READ_SIZE = 1024 * 1024  # per read from the pipe: fewer, larger chunks for large lines

# The SDK's shutdown timing: the server gets this long to exit after its stdin
# closes, then its process group gets SIGTERM, and SIGKILL after as long again.
_EXIT_GRACE = 2.0
_KILL_GRACE = 2.0
_EXIT_POLL = 0.01

Parse = Callable[[bytes], Any]
"""A line -> the transport's message item (a ``SessionMessage``, or the exception)."""
Serialize = Callable[[Any], bytes]
"""A ``SessionMessage`` -> its line, newline included."""


class _LargeReads:
    """A process's stdout, read up to ``_READ_SIZE`` bytes at a time."""

    def __init__(self, stdout: Any) -> None:
        self._stdout = stdout

    async def receive(self) -> bytes:
        data: bytes = await self._stdout.receive(_READ_SIZE)
        return data

    async def aclose(self) -> None:
        await self._stdout.aclose()


async def _parsed(line: bytes, parse: Parse) -> Any:
    if len(line) >= THREADED_PARSE:
        return await anyio.to_thread.run_sync(parse, line)
    return parse(line)


async def _read_messages(
    process: Process, parse: Parse, deliver: MemoryObjectSendStream[Any]
) -> None:
    """Deliver each line of the server's stdout as a message until it ends. One line
    at a time: nothing more is read while a delivery waits (back-pressure). Once
    nobody takes messages any more, what the server still writes is read and
    dropped, so that it is not stuck on a full pipe instead of exiting."""
    assert process.stdout is not None
    lines = BufferedByteReceiveStream(_LargeReads(process.stdout))  # type: ignore[arg-type]
    async with deliver:
        try:
            while True:
                line = await lines.receive_until(b"\n", MESSAGE_LIMIT)
                await deliver.send(await _parsed(line, parse))
        except anyio.IncompleteRead:  # the end of output; a last unterminated line is dropped
            return
        except anyio.DelimiterNotFound:
            logger.error(
                "gatekit: the upstream server wrote a message over %d bytes; "
                "the connection to it is closed",
                MESSAGE_LIMIT,
            )
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            pass  # the session is gone, or our shutdown closed the pipe
        except OSError as error:
            logger.error("gatekit: reading the upstream server's output failed: %s", error)
    await _drain(process)


async def _write_messages(
    process: Process,
    serialize: Serialize,
    outgoing: MemoryObjectReceiveStream[Any],
    deliver: MemoryObjectSendStream[Any],
    done: anyio.Event,
) -> None:
    assert process.stdin is not None
    try:
        async with outgoing:
            async for item in outgoing:
                await process.stdin.send(serialize(item))
    except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        # The server no longer reads: end the read side too, so that the session
        # sees the connection end instead of waiting for answers forever.
        await deliver.aclose()
    finally:
        done.set()


async def _exited(process: Process, timeout: float) -> bool:
    """Whether the process exits within ``timeout`` s (polled: ``wait()`` would also
    wait for the end of output, which a child that inherited the pipe can hold)."""
    with anyio.move_on_after(timeout):
        while process.returncode is None:  # noqa: ASYNC110 (no event tells of an exit)
            await anyio.sleep(_EXIT_POLL)
    return process.returncode is not None


async def _stop(process: Process) -> None:
    """MCP's stdio shutdown: close the server's stdin, give it time to exit, then end
    its whole process group (SIGTERM, SIGKILL)."""
    from mcp.os.posix.utilities import terminate_posix_process_tree

    assert process.stdin is not None and process.stdout is not None
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdin.aclose()
    if not await _exited(process, _EXIT_GRACE):
        await terminate_posix_process_tree(process, _KILL_GRACE)
        if not await _exited(process, _KILL_GRACE):
            logger.warning("gatekit: upstream server process %d did not die", process.pid)
    with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
        await process.stdout.aclose()


async def _drain(process: Process) -> None:
    """Read and drop what the server still writes while it shuts down, so that it is
    not stuck on a full pipe instead of exiting."""
    assert process.stdout is not None
    with suppress(anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
        while True:
            await process.stdout.receive(_READ_SIZE)


@asynccontextmanager
async def stdio_connection(
    command: list[str], env: Mapping[str, str], parse: Parse, serialize: Serialize
) -> AsyncIterator[tuple[Any, Any]]:
    """Start ``command`` (in a session of its own, so that its whole process group can
    be ended) and yield its (read stream, write stream) of message items."""
    if not command:
        raise ValueError("the upstream command is empty")
    # stderr=None: the server writes to the proxy's own stderr (file descriptor 2),
    # where a host collects its log, as when it starts the server directly.
    process = await anyio.open_process(command, env=dict(env), stderr=None, start_new_session=True)
    deliver, received = anyio.create_memory_object_stream[Any](0)
    to_send, outgoing = anyio.create_memory_object_stream[Any](0)
    writer_done = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(_read_messages, process, parse, deliver)
        group.start_soon(_write_messages, process, serialize, outgoing, deliver, writer_done)
        try:
            yield received, to_send
        finally:
            # Bounded at every step, and shielded: a cancelled caller must not leave
            # the server process running.
            with anyio.CancelScope(shield=True):
                received.close()  # the reader stops delivering
                to_send.close()  # the writer flushes what it has, then ends
                with anyio.move_on_after(0.5):
                    await writer_done.wait()
                await _stop(process)  # the reader drains the server's output meanwhile
            group.cancel_scope.cancel()


def default_environment() -> dict[str, str]:
    """The SDK's safe inherited environment (PATH, HOME…), which an explicit ``env``
    is laid over, as the SDK's own stdio client does."""
    from mcp.client.stdio import get_default_environment

    return get_default_environment()


def is_posix() -> bool:
    return os.name == "posix" and sys.platform != "win32"
