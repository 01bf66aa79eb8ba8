"""Who may call which route: an API key in ``Authorization: Bearer …``, its role
checked per route. A refusal records an ``access_refused`` audit event and nothing
else; the key itself is never logged or recorded (only its public key id).

``gatekit.server.routing.ApiRoute`` runs the check before anything else of the
request is read; ``require(role)`` is how a route names its role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import NoReturn

from fastapi import Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from gatekit.api_keys import Principal, Role, authenticate, key_id_of
from gatekit.engine import Engine
from gatekit.server.problems import ProblemError

_bearer = HTTPBearer(auto_error=False, description="A gatekit API key: gk_…")

ROLE_EXTENSION = "x-gatekit-role"  # the OpenAPI field naming the least role a route needs
PRINCIPAL = "gatekit_principal"  # request.state attribute set by ApiRoute


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def require(role: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency that lets a request through only with a key of ``role`` or above."""

    # async: a plain function would cost a trip through the thread pool per request
    # just to read what ApiRoute already checked.
    async def check(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(_bearer),  # noqa: B008
    ) -> Principal:
        checked: Principal | None = getattr(request.state, PRINCIPAL, None)
        if checked is not None:  # ApiRoute checked it before reading the body
            return checked
        token = credentials.credentials if credentials is not None else None
        return await run_in_threadpool(authorize, request, token, role)

    check.gatekit_role = role  # type: ignore[attr-defined]  # read by role_of
    return check


def role_of(dependant: Dependant) -> Role | None:
    """The role a route's ``require(role)`` dependency asks for; None: a public route."""
    for dependency in dependant.dependencies:
        role: Role | None = getattr(dependency.call, "gatekit_role", None)
        if role is not None:
            return role
    return None


def bearer_token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def authorize(request: Request, token: str | None, role: Role) -> Principal:
    """The key's holder if ``token`` is a live key of ``role`` or above; else the
    refusal is audited and the request answered 401 (no valid key) or 403."""
    engine = engine_of(request)
    principal = authenticate(engine.store, token) if token else None
    if principal is None:
        reason = "no API key" if not token else "unknown, malformed or revoked API key"
        refuse(request, 401, "unauthenticated", reason, key_id_of(token or ""))
    if not principal.role.allows(role):
        reason = f"this {principal.role.value} key may not do this (it needs {role.value})"
        refuse(request, 403, "forbidden", reason, principal.key_id)
    return principal


def refuse(request: Request, status: int, code: str, reason: str, key_id: str | None) -> NoReturn:
    engine = engine_of(request)
    data = {
        "method": request.method,
        "path": request.url.path,
        "status": status,
        "reason": reason,
        "key_id": key_id,
        "client": request.client.host if request.client else None,
    }
    engine.store.append_audit(engine.audit.event("access_refused", None, data, datetime.now(UTC)))
    engine.audit.committed()
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    raise ProblemError(status, code, reason, headers=headers)
