"""``HttpBackend``: the decisions of a shared gatekit server (``gatekit serve``).

    client = Client(backend=HttpBackend("https://gatekit.internal", api_key="gk_…"))

or set ``GATEKIT_SERVER_URL`` and ``GATEKIT_API_KEY`` and use ``Client()``. The same
``Decision``s and exceptions as the embedded engine, and the same fail-closed
rule: an answer that is not a valid decision about the action sent is a
``BackendError``, and nothing runs.

Each operation is described once, as a ``_Call`` (what to send, whether it may be
sent twice, how to read the answer); the sync path (``httpx.Client``) and the
async path (``httpx.AsyncClient``) only send it. Both pool connections, bound
every attempt by ``timeout``, retry as ``_http_retry`` allows, and bound how many
requests are in flight at once (per event loop for the async path).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote
from weakref import WeakKeyDictionary

import anyio
import httpx
from anyio.lowlevel import RunVar
from pydantic import SecretStr

from gatekit._exceptions import BackendError, ConfigurationError, ValidationError
from gatekit._models import Decision, DecisionRequest, Outcome
from gatekit._settings import Settings, load_settings
from gatekit._version import __version__
from gatekit.backends._http_answers import (
    Expected,
    read_decision,
    read_no_content,
    read_pending,
    read_ready,
)
from gatekit.backends._http_retry import Answer, RetryPolicy

__all__ = ["HttpBackend"]

T = TypeVar("T")

MAX_ANSWER_BYTES = 16 * 1024 * 1024  # a page of 500 pending reviews fits; a flood does not
_PENDING_PAGE = 500  # the server's most per request
_KEY_PREFIX = "gk-http-"  # idempotency keys made here, so that a retry is safe


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One API operation: the request, and how its answer becomes a result.

    ``replayable``: sending it twice cannot make anything happen twice (a read, or
    a decision under an idempotency key), so it may be retried after a failure
    that left its fate unknown.
    """

    method: str
    path: str
    read: Callable[[Answer], T]
    body: bytes | None = None
    replayable: bool = False
    params: dict[str, str] | None = None  # None, not {}: httpx re-parses the URL for params


@dataclass(slots=True)
class _LoopSide:
    """The async path's connection pool and in-flight slots, for one event loop
    (an ``httpx.AsyncClient`` cannot outlive or leave the loop it first ran in)."""

    client: httpx.AsyncClient
    slots: anyio.Semaphore


_LOOP_SIDES: RunVar[WeakKeyDictionary[HttpBackend, _LoopSide]] = RunVar("gatekit_http_sides")


class HttpBackend:
    """A ``Backend`` and ``ReviewBackend`` that asks a gatekit decision server.

    ``url`` and ``api_key`` default to ``GATEKIT_SERVER_URL`` and ``GATEKIT_API_KEY``.
    ``timeout`` bounds each attempt (connecting, sending and the whole answer), in
    seconds; ``retries`` more attempts follow a failure when they are safe (see
    ``gatekit.backends._http_retry``), waiting a jittered backoff or the server's
    ``Retry-After`` (up to ``max_retry_after``); at most ``max_in_flight`` requests
    are under way at once. ``verify`` is httpx's TLS verification (a CA bundle path
    or an ``ssl.SSLContext`` for a private CA).

    A decision request without an idempotency key is sent with one made here, so a
    retry returns the decision already made instead of making a second one; the
    key is not handed back (the caller made no single-use promise). A request under
    delegation is sent as signed: its proof covers the action, key included, and
    its nonce makes a second send a refused replay, so it is retried only when it
    surely never arrived.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        api_key: str | SecretStr | None = None,
        timeout: float = 5.0,
        retries: int = 3,
        max_in_flight: int = 32,
        max_retry_after: float = 5.0,
        verify: bool | str | ssl.SSLContext = True,
        settings: Settings | None = None,
    ) -> None:
        if url is None or api_key is None:
            settings = settings or load_settings()
            url = url if url is not None else settings.server_url
            api_key = api_key if api_key is not None else settings.api_key
        self.url = _checked_url(url)
        key = _checked_key(api_key)
        _check_bounds(timeout=timeout, retries=retries, max_in_flight=max_in_flight)
        if max_retry_after < 0:
            raise ConfigurationError("max_retry_after must be 0 or more seconds")
        self.timeout = float(timeout)
        self.max_in_flight = max_in_flight
        self.retry = RetryPolicy(retries=retries, max_retry_after=max_retry_after)
        self._options: dict[str, Any] = {
            "base_url": self.url,
            "headers": {
                "authorization": f"Bearer {key}",
                "accept": "application/json",
                "user-agent": f"gatekit-core/{__version__}",
            },
            "timeout": httpx.Timeout(self.timeout),
            "limits": httpx.Limits(
                max_connections=max_in_flight, max_keepalive_connections=max_in_flight
            ),
            "verify": verify,
            "follow_redirects": False,  # a redirect is not an answer (and must not carry the key)
        }
        self._client = httpx.Client(**self._options)
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpBackend:
        """The server ``GATEKIT_SERVER_URL`` names, with ``GATEKIT_API_KEY``."""
        return cls(settings.server_url, api_key=settings.api_key, settings=settings)

    def __repr__(self) -> str:
        return f"HttpBackend({self.url!r})"  # never the key

    # -- the operations, described once ------------------------------------------------

    def _decide_call(self, request: DecisionRequest) -> _Call[Decision]:
        sent, made_key = _with_idempotency_key(request)
        expected = Expected(
            action_digest=request.action_digest,
            tool=request.action.tool,
            check_key=True,
            idempotency_key=sent.action.idempotency_key,
        )

        def read(answer: Answer) -> Decision:
            decision = read_decision(answer, expected)
            return decision.model_copy(update={"idempotency_key": None}) if made_key else decision

        replayable = sent.delegation is None and sent.action.idempotency_key is not None
        return _Call("POST", "/v1/decisions", read, _json(sent), replayable)

    def _preview_call(self, request: DecisionRequest) -> _Call[Decision]:
        expected = Expected(action_digest=request.action_digest, tool=request.action.tool)
        # A dry run records nothing and spends no nonce: sending it twice is harmless.
        return _Call("POST", "/v1/preview", _reader(expected), _json(request), replayable=True)

    def _get_call(self, decision_id: str) -> _Call[Decision]:
        path = f"/v1/decisions/{_segment(decision_id, 'decision_id')}"
        return _Call("GET", path, _reader(Expected(decision_id=decision_id)), replayable=True)

    def _consume_call(self, decision_id: str, request: DecisionRequest) -> _Call[Decision]:
        expected = Expected(
            decision_id=decision_id, action_digest=request.action_digest, tool=request.action.tool
        )
        path = f"/v1/decisions/{_segment(decision_id, 'decision_id')}/consume"
        return _Call("POST", path, _reader(expected), _json(request))

    def _report_call(self, decision_id: str, outcome: Outcome) -> _Call[None]:
        path = f"/v1/decisions/{_segment(decision_id, 'decision_id')}/outcome"
        return _Call("POST", path, read_no_content, _json(outcome))

    def _ready_call(self) -> _Call[bool]:
        return _Call("GET", "/readyz", read_ready, replayable=True)

    def _pending_call(self) -> _Call[list[Decision]]:
        params = {"status": "pending_review", "limit": str(_PENDING_PAGE)}
        return _Call("GET", "/v1/approvals", read_pending, replayable=True, params=params)

    def _review_call(self, verb: str, approval_id: str, comment: str) -> _Call[Decision]:
        path = f"/v1/approvals/{_segment(approval_id, 'approval_id')}/{verb}"
        body = _json_value({"comment": comment})
        return _Call("POST", path, _reader(Expected(approval_id=approval_id)), body)

    # -- the Backend protocol, sync ----------------------------------------------------

    def decide(self, request: DecisionRequest) -> Decision:
        return self._send(self._decide_call(request))

    def preview(self, request: DecisionRequest) -> Decision:
        return self._send(self._preview_call(request))

    def get_decision(self, decision_id: str) -> Decision:
        return self._send(self._get_call(decision_id))

    def consume(self, decision_id: str, request: DecisionRequest) -> Decision:
        return self._send(self._consume_call(decision_id, request))

    def report(self, decision_id: str, outcome: Outcome) -> None:
        self._send(self._report_call(decision_id, outcome))

    def ready(self) -> bool:
        try:
            return self._send(self._ready_call())
        except BackendError:
            return False

    def close(self) -> None:
        self._closed = True
        self._client.close()

    def __enter__(self) -> HttpBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the ReviewBackend protocol (sync) ---------------------------------------------
    # The server records the API key's holder as the reviewer, never a name a request
    # carries: ``reviewer`` is part of the protocol, and is not sent.

    def pending(self) -> list[Decision]:
        """Decisions waiting for a reviewer (needs a reviewer or admin key)."""
        return self._send(self._pending_call())

    def approve(self, approval_id: str, *, reviewer: str = "", comment: str = "") -> Decision:
        return self._send(self._review_call("approve", approval_id, comment))

    def reject(self, approval_id: str, *, reviewer: str = "", comment: str = "") -> Decision:
        return self._send(self._review_call("reject", approval_id, comment))

    # -- the Backend protocol, async ---------------------------------------------------

    async def adecide(self, request: DecisionRequest) -> Decision:
        return await self._asend(self._decide_call(request))

    async def apreview(self, request: DecisionRequest) -> Decision:
        return await self._asend(self._preview_call(request))

    async def aget_decision(self, decision_id: str) -> Decision:
        return await self._asend(self._get_call(decision_id))

    async def aconsume(self, decision_id: str, request: DecisionRequest) -> Decision:
        return await self._asend(self._consume_call(decision_id, request))

    async def areport(self, decision_id: str, outcome: Outcome) -> None:
        await self._asend(self._report_call(decision_id, outcome))

    async def aready(self) -> bool:
        try:
            return await self._asend(self._ready_call())
        except BackendError:
            return False

    async def aclose(self) -> None:
        """Closes the sync pool and this event loop's; other loops' go with their loop."""
        self.close()
        side = _loop_sides().pop(self, None)
        if side is not None:
            await side.client.aclose()

    # -- sending: sync ------------------------------------------------------------------

    def _send(self, call: _Call[T]) -> T:
        self._check_open()
        if not self._slots.acquire(timeout=self.timeout):
            raise BackendError(
                f"{self.max_in_flight} requests to the decision server were already in "
                f"flight for {self.timeout} s"
            )
        try:
            answer: Answer = self.retry.retrying(call.replayable)(self._attempt, call)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        finally:
            self._slots.release()
        return call.read(answer)

    def _attempt(self, call: _Call[Any]) -> Answer:
        deadline = time.monotonic() + self.timeout
        with self._client.stream(
            call.method, call.path, content=call.body, params=call.params, headers=_headers(call)
        ) as response:
            content = _bounded(response, response.iter_bytes(), deadline)
        return Answer(response.status_code, response.headers, content)

    # -- sending: async -----------------------------------------------------------------

    async def _asend(self, call: _Call[T]) -> T:
        self._check_open()
        side = self._loop_side()
        try:
            with anyio.fail_after(self.timeout):
                await side.slots.acquire()
        except TimeoutError:
            raise BackendError(
                f"{self.max_in_flight} requests to the decision server were already in "
                f"flight for {self.timeout} s"
            ) from None
        try:
            retrying = self.retry.async_retrying(call.replayable)
            answer: Answer = await retrying(self._aattempt, side.client, call)
        except httpx.HTTPError as exc:
            raise _unreachable(self.url, exc) from exc
        finally:
            side.slots.release()
        return call.read(answer)

    async def _aattempt(self, client: httpx.AsyncClient, call: _Call[Any]) -> Answer:
        deadline = time.monotonic() + self.timeout
        async with client.stream(
            call.method, call.path, content=call.body, params=call.params, headers=_headers(call)
        ) as response:
            content = await _abounded(response, response.aiter_bytes(), deadline)
        return Answer(response.status_code, response.headers, content)

    def _loop_side(self) -> _LoopSide:
        sides = _loop_sides()
        side = sides.get(self)
        if side is None:
            side = _LoopSide(
                httpx.AsyncClient(**self._options), anyio.Semaphore(self.max_in_flight)
            )
            sides[self] = side
        return side

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("this HttpBackend is closed")


# -- helpers ---------------------------------------------------------------------------


def _loop_sides() -> WeakKeyDictionary[HttpBackend, _LoopSide]:
    try:
        return _LOOP_SIDES.get()
    except LookupError:
        sides: WeakKeyDictionary[HttpBackend, _LoopSide] = WeakKeyDictionary()
        _LOOP_SIDES.set(sides)
        return sides


def _reader(expected: Expected) -> Callable[[Answer], Decision]:
    return lambda answer: read_decision(answer, expected)


def _with_idempotency_key(request: DecisionRequest) -> tuple[DecisionRequest, bool]:
    """``request`` with an idempotency key of its own, and whether one was made here.
    A signed (delegated) request is sent as signed: its proof covers the action."""
    if request.action.idempotency_key is not None or request.delegation is not None:
        return request, False
    action = request.action.model_copy(update={"idempotency_key": _KEY_PREFIX + uuid.uuid4().hex})
    return request.model_copy(update={"action": action}), True


def _json(model: DecisionRequest | Outcome) -> bytes:
    return model.model_dump_json().encode()


def _json_value(value: dict[str, str]) -> bytes:
    return json.dumps(value).encode()


def _headers(call: _Call[Any]) -> dict[str, str]:
    return {"content-type": "application/json"} if call.body is not None else {}


def _segment(value: str, name: str) -> str:
    """An id as one path segment: escaped, so it cannot name another route."""
    if not value:
        raise ValidationError(f"{name} must not be empty", field=name)
    return quote(value, safe="")


def _bounded(response: httpx.Response, chunks: Iterator[bytes], deadline: float) -> bytes:
    body = bytearray()
    _check_declared_size(response)
    for chunk in chunks:
        body += chunk
        _check_progress(response, len(body), deadline)
    return bytes(body)


async def _abounded(
    response: httpx.Response, chunks: AsyncIterator[bytes], deadline: float
) -> bytes:
    body = bytearray()
    _check_declared_size(response)
    async for chunk in chunks:
        body += chunk
        _check_progress(response, len(body), deadline)
    return bytes(body)


def _check_declared_size(response: httpx.Response) -> None:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise BackendError(f"the decision server's answer is over {MAX_ANSWER_BYTES} bytes")


def _check_progress(response: httpx.Response, size: int, deadline: float) -> None:
    if size > MAX_ANSWER_BYTES:
        raise BackendError(f"the decision server's answer is over {MAX_ANSWER_BYTES} bytes")
    if time.monotonic() > deadline:  # a server that drips its answer out
        raise httpx.ReadTimeout("the answer took longer than the timeout", request=response.request)


def _unreachable(url: str, exc: httpx.HTTPError) -> BackendError:
    return BackendError(f"no answer from the decision server at {url}: {type(exc).__name__}: {exc}")


def _checked_url(url: str | None) -> str:
    if not url:
        raise ConfigurationError(
            "HttpBackend needs the server's URL: HttpBackend(url) or GATEKIT_SERVER_URL"
        )
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ConfigurationError(f"invalid decision server URL {url!r}: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(f"the decision server URL must be http(s)://host…, got {url!r}")
    if parsed.userinfo or parsed.query or parsed.fragment:
        raise ConfigurationError("the decision server URL must not carry credentials or a query")
    return str(parsed).rstrip("/")


def _checked_key(api_key: str | SecretStr | None) -> str:
    key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    if not key:
        raise ConfigurationError(
            "HttpBackend needs an API key: api_key= or GATEKIT_API_KEY (gatekit keys create)"
        )
    if not key.isascii() or not key.isprintable() or any(c.isspace() for c in key):
        raise ConfigurationError("the API key must be printable ASCII without spaces")
    return key


def _check_bounds(*, timeout: float, retries: int, max_in_flight: int) -> None:
    if not timeout > 0:
        raise ConfigurationError("timeout must be more than 0 seconds")
    if retries < 0:
        raise ConfigurationError("retries must be 0 or more")
    if max_in_flight < 1:
        raise ConfigurationError("max_in_flight must be 1 or more")
