"""The decision server's app: the same ``Engine`` as the embedded backend, behind
a versioned JSON API, key-checked routes and problem-document errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatekit._exceptions import ConfigurationError
from gatekit._settings import Settings, load_settings
from gatekit._version import __version__
from gatekit.api_keys import ApiKeyStore
from gatekit.engine import Engine
from gatekit.server import api, delegations, ops, problems, review
from gatekit.server.metrics import Metrics
from gatekit.server.writer import with_writer_id

MAX_BODY_BYTES = 1024 * 1024  # a decision request is a few KB; arguments are summaries


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The server for ``settings`` (default: ``GATEKIT_*``), or around ``engine``.
    An engine made here is closed when the app shuts down (outcomes committed,
    the audit log's last records signed)."""
    settings = settings or load_settings()
    owned = engine is None
    engine = engine or Engine.from_settings(settings)
    if not isinstance(engine.store, ApiKeyStore):
        raise ConfigurationError(f"{type(engine.store).__name__} cannot keep API keys")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            engine.close()

    app = FastAPI(
        title="gatekit",
        version=__version__,
        summary="Governance decisions for AI agents' tool calls.",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        swagger_ui_oauth2_redirect_url="/v1/docs/oauth2-redirect",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = Metrics(engine)
    problems.install(app)
    app.include_router(api.router)
    app.include_router(ops.router)
    delegations.install(app)
    review.install(app)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def app_from_environment() -> FastAPI:
    """The app ``GATEKIT_*`` describes (``gatekit serve`` workers start with this),
    writing its own audit chain (see ``gatekit.server.writer``)."""
    return create_app(with_writer_id(load_settings()))


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with a 413 problem before any of it
    is parsed, whether it declares its length or streams it (then it is read here,
    up to the limit, and handed on whole)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break  # the client went away
            body += message.get("body", b"")
            if len(body) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"the request body is over {self.max_bytes} bytes"
        response = problems.problem_response(413, "body_too_large", detail)
        await response(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # e.g. http.disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
