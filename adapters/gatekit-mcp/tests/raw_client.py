"""A JSON-RPC client that speaks raw JSON lines to a process over stdio.

For what an SDK client hides: which messages arrive at all (a cancelled request
gets no answer), exact ids and error codes, and the process's exit status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream


class RawClient:
    def __init__(self, process: Process) -> None:
        self.process = process
        assert process.stdin is not None and process.stdout is not None
        self._stdin = process.stdin
        self._stdout = BufferedByteReceiveStream(process.stdout)
        self._next_id = 0
        self.seen: list[dict[str, Any]] = []  # every message read, in order
        self._unclaimed: list[dict[str, Any]] = []  # read, not yet asked for

    async def send(self, message: dict[str, Any]) -> None:
        await self._stdin.send((json.dumps(message) + "\n").encode())

    async def request(self, method: str, params: dict[str, Any] | None = None) -> int:
        """Send a request; its id."""
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)
        return self._next_id

    async def notify(self, method: str, params: dict[str, Any] | None = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self.send(message)

    async def receive(self, timeout: float = 20) -> dict[str, Any]:
        with anyio.fail_after(timeout):
            line = await self._stdout.receive_until(b"\n", 10_000_000)
        message: dict[str, Any] = json.loads(line)
        self.seen.append(message)
        return message

    async def _first(self, wanted: Any, timeout: float) -> dict[str, Any]:
        """The first message, read before or now, that ``wanted`` accepts."""
        for message in self._unclaimed:
            if wanted(message):
                self._unclaimed.remove(message)
                return message
        with anyio.fail_after(timeout):
            while True:
                message = await self.receive(timeout)
                if wanted(message):
                    return message
                self._unclaimed.append(message)

    async def answer(self, request_id: int, timeout: float = 20) -> dict[str, Any]:
        """The answer to ``request_id``."""
        return await self._first(lambda m: "method" not in m and m.get("id") == request_id, timeout)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.answer(await self.request(method, params))

    async def until(self, method: str, timeout: float = 20) -> dict[str, Any]:
        """The first message (request or notification) with ``method``."""
        return await self._first(lambda m: m.get("method") == method, timeout)

    async def initialize(self, capabilities: dict[str, Any] | None = None) -> dict[str, Any]:
        params = {
            "protocolVersion": "2025-06-18",
            "capabilities": capabilities or {},
            "clientInfo": {"name": "raw-test-client", "version": "0.1"},
        }
        answer = await self.call("initialize", params)
        await self.notify("notifications/initialized")
        return answer

    async def close(self) -> int:
        """Close stdin (the client leaves) and wait for the exit status."""
        await self._stdin.aclose()
        with anyio.fail_after(20):
            return await self.process.wait()


@asynccontextmanager
async def raw_process(
    args: list[str], env: dict[str, str], stderr: Path
) -> AsyncIterator[RawClient]:
    """``python args…`` with a RawClient on its stdio; stderr goes to a file."""
    with stderr.open("wb") as errors:
        process = await anyio.open_process(
            [sys.executable, *args],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        async with process:
            try:
                yield RawClient(process)
            finally:
                if process.returncode is None:
                    process.terminate()
                    with anyio.move_on_after(10):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
