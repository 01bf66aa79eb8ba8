"""A tiny scripted HTTP server on a real socket: it answers what a test tells it to
(garbage, a decision about another action, 503 then the real answer), and keeps
every request it got. With ``upstream``, a reply can first pass the request on to
a real gatekit server — a lost answer is a 503 for a request the server handled.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_RELAYED = ("authorization", "content-type")


@dataclass
class Reply:
    """One scripted answer. ``status=None`` with ``forward`` relays the upstream's."""

    status: int | None = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    forward: bool = False
    delay: float = 0.0  # seconds to hold the request before answering

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        if isinstance(self.body, bytes):
            return self.body, self.headers
        if isinstance(self.body, str):
            return self.body.encode(), self.headers
        return json.dumps(self.body).encode(), {"content-type": "application/json", **self.headers}


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeServer:
    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.default = Reply(500, {"code": "no_script", "detail": "nothing scripted"})
        self.requests: list[Seen] = []
        self.upstream: str | None = None
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.02,), daemon=True)

    @classmethod
    def start(cls) -> FakeServer:
        server = cls()
        server._thread.start()
        return server

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    def paths(self) -> list[str]:
        return [f"{seen.method} {seen.path}" for seen in self.requests]

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            return self.replies.popleft() if self.replies else self.default

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _forward(self, seen: Seen) -> httpx.Response:
        assert self.upstream is not None, "forward needs an upstream"
        headers = {name: seen.headers[name] for name in _RELAYED if name in seen.headers}
        return httpx.request(
            seen.method, self.upstream + seen.path, content=seen.body, headers=headers, timeout=10
        )


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen = Seen(self.command, self.path, headers, body)
            reply = server._next(seen)
            try:
                self._reply(seen, reply)
            finally:
                server._done()

        def _reply(self, seen: Seen, reply: Reply) -> None:
            time.sleep(reply.delay)
            if reply.forward:
                relayed = server._forward(seen)
                if reply.status is None:
                    kind = relayed.headers.get("content-type", "application/json")
                    self._answer(relayed.status_code, relayed.content, {"content-type": kind})
                    return
            content, extra = reply.encoded()
            self._answer(reply.status or 200, content, extra)

        def _answer(self, status: int, content: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        do_GET = do_POST = do_DELETE = _serve

    return Handler
