"""The API's route class: what every /v1 request goes through before FastAPI reads
its body or validates its parameters.

1. The key, when the route names a role (``require(role)``): a caller without the
   right key gets 401/403 whatever it sent, and learns nothing from how its body
   would have been parsed.
2. The request's shape FastAPI would otherwise accept or misreport: a body that is
   not JSON (415, not an obscure validation error) and a query parameter the route
   does not have (a typo such as ``?stauts=approved`` must not quietly list the
   pending reviews).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from gatekit.server.auth import PRINCIPAL, ROLE_EXTENSION, authorize, bearer_token, role_of
from gatekit.server.problems import ProblemError


class ApiRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **options: Any) -> None:
        super().__init__(path, endpoint, **options)
        role = role_of(self.dependant)
        if role is not None:  # clients and the role walk test read it from the document
            self.openapi_extra = {**(self.openapi_extra or {}), ROLE_EXTENSION: role.value}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        role = role_of(self.dependant)
        takes_body = self.body_field is not None
        known_query = frozenset(param.alias for param in self.dependant.query_params)

        async def checked_first(request: Request) -> Response:
            if role is not None:
                token = bearer_token(request)
                principal = await run_in_threadpool(authorize, request, token, role)
                setattr(request.state, PRINCIPAL, principal)
            unknown = sorted(set(request.query_params) - known_query)
            if unknown:
                allowed = ", ".join(sorted(known_query)) or "none"
                detail = f"unknown query parameter(s): {', '.join(unknown)} (allowed: {allowed})"
                raise ProblemError(422, "invalid_request", detail[:2000])
            if takes_body and await request.body() and not _is_json(request):
                raise ProblemError(
                    415, "unsupported_media_type", "send the body as application/json"
                )
            return await handler(request)

        return checked_first


def _is_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
