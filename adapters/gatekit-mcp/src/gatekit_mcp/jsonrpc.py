"""One end of a JSON-RPC 2.0 connection over an MCP transport, in wire form.

The gating proxy is a client of the upstream server and a server to its own
client; both ends are a ``Peer``. A peer sends requests (each under an id of its
own, answered through ``request``), sends notifications, and hands what
arrives to its owner: requests to ``on_request`` (one task each, so a slow one
holds up nothing), notifications to ``on_notification`` (in order).

It keeps what JSON-RPC and MCP ask of either end:

* ``notifications/cancelled`` from the other side cancels the request it names,
  which then gets no answer (MCP: "receivers … SHOULD NOT send a response");
  a request of ours that is abandoned (its caller cancelled, or it timed out)
  is cancelled on the other side the same way.
* A request of ours can time out; a progress notification for it (by its
  ``progressToken``) restarts the clock, as long operations report progress.
* When the connection ends, every request still waiting fails with
  ``PeerClosed`` — a JSON-RPC error with a clear message, never a hang.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from gatekit_mcp._compat import Arrival, Wire, arrival, message_wire

__all__ = [
    "CONNECTION_CLOSED",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "REQUEST_TIMEOUT",
    "Inbound",
    "Peer",
    "PeerClosed",
    "RequestId",
    "RpcError",
]

logger = logging.getLogger("gatekit_mcp")

RequestId = str | int

_GONE = (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError)

# JSON-RPC's own codes, and the two the MCP SDKs use for a closed connection and
# a request that timed out (from the implementation-defined -32000..-32099 range).
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001


class RpcError(Exception):
    """A JSON-RPC error: raised by a handler to answer with it, or by ``request``
    when the other side answered with one."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def wire(self) -> Wire:
        error: Wire = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error

    @classmethod
    def from_wire(cls, error: Any) -> RpcError:
        """The error in an answer, even a malformed one (it still is an error)."""
        if not isinstance(error, dict):
            return cls(INTERNAL_ERROR, f"malformed error answer: {error!r}"[:500])
        code = error.get("code")
        message = error.get("message")
        return cls(
            code if isinstance(code, int) and not isinstance(code, bool) else INTERNAL_ERROR,
            message if isinstance(message, str) and message else "error without a message",
            error.get("data"),
        )


class PeerClosed(RpcError):
    """The connection ended before an answer came."""

    def __init__(self, reason: str) -> None:
        super().__init__(CONNECTION_CLOSED, reason)


@dataclass(frozen=True, slots=True)
class Inbound:
    """A request from the other side."""

    id: RequestId
    method: str
    params: Wire
    arrival: Arrival = field(default_factory=Arrival)


RequestHandler = Callable[[Inbound], Awaitable[Wire]]
NotificationHandler = Callable[[str, Wire], Awaitable[None]]
Encoder = Callable[[Wire, RequestId | None], Any]
"""Wire message and related request id -> the transport's message item."""


@dataclass(slots=True)
class _Waiting:
    """A request of ours, waiting for its answer."""

    method: str
    answers: MemoryObjectSendStream[Wire]
    progress_token: str | int | None
    timeout: float | None
    clock: anyio.CancelScope | None = None
    failure: RpcError | None = None


def _progress_token(params: Wire | None) -> str | int | None:
    meta = (params or {}).get("_meta")
    token = meta.get("progressToken") if isinstance(meta, dict) else None
    return token if isinstance(token, str | int) and not isinstance(token, bool) else None


def _normal_id(value: Any) -> RequestId | None:
    # Our ids are integers; a peer that echoes them as strings still matches.
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value if isinstance(value, str | int) else None


class Peer:
    """One end of a JSON-RPC connection: send requests and notifications, serve
    what arrives. ``run()`` reads until the other side goes away."""

    def __init__(
        self,
        read_stream: Any,
        write_stream: Any,
        *,
        name: str,
        encode: Encoder,
        on_request: RequestHandler,
        on_notification: NotificationHandler,
    ) -> None:
        self.name = name  # as error messages name the other side
        self.encode = encode  # replaceable: the upstream's protocol version comes later
        self._read = read_stream
        self._write = write_stream
        self._on_request = on_request
        self._on_notification = on_notification
        self._next_id = 0
        self._waiting: dict[RequestId, _Waiting] = {}
        self._serving: dict[RequestId, anyio.CancelScope] = {}
        self._idle = anyio.Event()
        self._idle.set()
        self.closed = anyio.Event()
        self.close_reason = f"{name} closed the connection"

    # -- the other side's messages ---------------------------------------------------

    async def run(self) -> None:
        """Read and dispatch until the connection ends; then fail what still waits
        and stop serving (there is nobody left to answer)."""
        try:
            async with anyio.create_task_group() as serving:
                try:
                    async for item in self._read:
                        await self._dispatch(item, serving)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass
                finally:
                    serving.cancel_scope.cancel()
        finally:
            self.close(self.close_reason)
            # The transport's writer ends when its stream is closed, as the SDK's own
            # sessions do; nothing is sent after this (a send fails as PeerClosed).
            with anyio.CancelScope(shield=True):
                await self._write.aclose()

    async def _dispatch(self, item: Any, serving: anyio.abc.TaskGroup) -> None:
        if isinstance(item, Exception):  # the transport could not read a message
            logger.warning("gatekit: unreadable message from %s: %s", self.name, item)
            return
        message = message_wire(item)
        if "method" not in message:
            self._answered(message)
        elif "id" in message:
            self._serve(message, arrival(item), serving)
        else:
            await self._notified(str(message["method"]), message.get("params") or {})

    def _answered(self, message: Wire) -> None:
        request_id = _normal_id(message.get("id"))
        waiting = self._waiting.pop(request_id, None) if request_id is not None else None
        if waiting is None:
            logger.debug("gatekit: an answer from %s to no request of ours: %s", self.name, message)
            return
        with suppress(*_GONE):  # its waiter is gone already
            waiting.answers.send_nowait(message)

    async def _notified(self, method: str, params: Wire) -> None:
        if method == "notifications/cancelled":
            self._cancel_serving(params.get("requestId"))
            return
        if method == "notifications/progress":
            self._restart_clock(params.get("progressToken"))
        try:
            await self._on_notification(method, params)
        except Exception:  # one bad notification must not end the connection
            logger.exception("gatekit: handling %s from %s failed", method, self.name)

    def _cancel_serving(self, request_id: Any) -> None:
        scope = self._serving.get(request_id) if isinstance(request_id, str | int) else None
        if scope is not None:
            scope.cancel()

    def _restart_clock(self, token: Any) -> None:
        for waiting in self._waiting.values():
            if waiting.progress_token == token and waiting.clock and waiting.timeout:
                waiting.clock.deadline = anyio.current_time() + waiting.timeout

    # -- serving a request -----------------------------------------------------------

    def _serve(self, message: Wire, came: Arrival, serving: anyio.abc.TaskGroup) -> None:
        request_id = message["id"]
        params = message.get("params")
        inbound = Inbound(
            request_id, str(message["method"]), params if isinstance(params, dict) else {}, came
        )
        if request_id in self._serving:  # JSON-RPC ids are unique while in flight
            error = RpcError(INVALID_REQUEST, f"request id {request_id!r} is already in use")
            serving.start_soon(self._answer, request_id, {"error": error.wire()})
            return
        scope = anyio.CancelScope()  # registered now: a cancel may come before the task runs
        self._serving[request_id] = scope
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        serving.start_soon(self._handle, inbound, scope)

    async def _handle(self, inbound: Inbound, scope: anyio.CancelScope) -> None:
        answer: Wire | None = None
        try:
            with scope:
                answer = await self._outcome(inbound)
            if answer is not None:
                await self._answer(inbound.id, answer)
            elif inbound.arrival.unanswered is not None:  # cancelled: end its HTTP exchange
                with anyio.CancelScope(shield=True):
                    await inbound.arrival.unanswered()
        finally:  # idle only once the answer is out
            del self._serving[inbound.id]
            if not self._serving:
                self._idle.set()

    async def _outcome(self, inbound: Inbound) -> Wire:
        try:
            return {"result": await self._on_request(inbound)}
        except RpcError as error:
            return {"error": error.wire()}
        except Exception as error:
            rpc = _rpc_error_in(error)
            if rpc is not None:
                return {"error": rpc.wire()}
            logger.exception("gatekit: %s from %s failed", inbound.method, self.name)
            message = f"gatekit proxy: {inbound.method} failed: {type(error).__name__}"
            return {"error": RpcError(INTERNAL_ERROR, message).wire()}

    async def _answer(self, request_id: RequestId, answer: Wire) -> None:
        try:
            await self._send({"jsonrpc": "2.0", "id": request_id, **answer}, None)
        except PeerClosed:
            logger.debug("gatekit: %s left before its answer to %r", self.name, request_id)

    async def idle(self) -> None:
        """Return once no request from the other side is being served."""
        await self._idle.wait()

    # -- our requests and notifications ----------------------------------------------

    async def _send(self, message: Wire, related: RequestId | None) -> None:
        try:
            await self._write.send(self.encode(message, related))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
            self.close(self.close_reason)
            raise PeerClosed(self.close_reason) from None

    async def notify(
        self, method: str, params: Wire | None = None, *, related: RequestId | None = None
    ) -> None:
        message: Wire = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        await self._send(message, related)

    async def request(
        self,
        method: str,
        params: Wire | None = None,
        *,
        timeout: float | None = None,
        related: RequestId | None = None,
    ) -> Wire:
        """Send a request and return its result; ``RpcError`` for an error answer,
        ``PeerClosed`` when the connection ends first, a ``REQUEST_TIMEOUT`` error
        after ``timeout`` seconds without an answer (or progress)."""
        if self.closed.is_set():
            raise PeerClosed(self.close_reason)
        request_id = self._next_id
        self._next_id += 1
        send, receive = anyio.create_memory_object_stream[Wire](1)
        waiting = _Waiting(method, send, _progress_token(params), timeout)
        self._waiting[request_id] = waiting
        message: Wire = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        try:
            await self._send(message, related)
            answer = await self._await_answer(waiting, receive)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._abandon(request_id, method, "the request was cancelled")
            raise
        finally:
            self._waiting.pop(request_id, None)
            send.close()
            receive.close()
        if answer is None:  # timed out
            await self._abandon(request_id, method, "the request timed out")
            raise RpcError(
                REQUEST_TIMEOUT,
                f"gatekit proxy: {self.name} did not answer {method} in {timeout:g} s",
            )
        if waiting.failure is not None:
            raise waiting.failure
        if "error" in answer:
            raise RpcError.from_wire(answer["error"])
        result = answer.get("result")
        return result if isinstance(result, dict) else {}

    @staticmethod
    async def _await_answer(
        waiting: _Waiting, receive: MemoryObjectReceiveStream[Wire]
    ) -> Wire | None:
        with anyio.CancelScope() as clock:
            waiting.clock = clock
            if waiting.timeout is not None:
                clock.deadline = anyio.current_time() + waiting.timeout
            return await receive.receive()
        return None  # the clock ran out

    async def _abandon(self, request_id: RequestId, method: str, reason: str) -> None:
        """Tell the other side we no longer wait (MCP forbids cancelling initialize)."""
        if method == "initialize" or self.closed.is_set():
            return
        params = {"requestId": request_id, "reason": reason}
        with suppress(PeerClosed):
            await self.notify("notifications/cancelled", params)

    def close(self, reason: str) -> None:
        """The connection is over: every request still waiting fails with ``reason``."""
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        for waiting in list(self._waiting.values()):
            waiting.failure = PeerClosed(reason)
            with suppress(*_GONE):
                waiting.answers.send_nowait({})


def _rpc_error_in(error: BaseException) -> RpcError | None:
    """The JSON-RPC error inside an exception group of one (task groups wrap)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error if isinstance(error, RpcError) else None
