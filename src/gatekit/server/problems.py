"""Every error the server answers is an RFC 9457 problem document with a stable
``code``; a refused use of a decision also carries the ``decision``, so a client
raises the very exception the embedded engine would have."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from gatekit._exceptions import (
    ApprovalConsumed,
    ApprovalExpired,
    Blocked,
    DecisionError,
    IdempotencyConflict,
    PendingReview,
    RateLimited,
    Rejected,
    ReviewConflict,
    ValidationError,
)
from gatekit._models import Decision

logger = logging.getLogger("gatekit.server")

MEDIA_TYPE = "application/problem+json"

# The stable codes of refused decision uses, both ways: the client maps them back.
DECISION_ERROR_CODES: dict[type[DecisionError], str] = {
    RateLimited: "rate_limited",
    Blocked: "blocked",
    PendingReview: "pending_review",
    Rejected: "rejected",
    ApprovalExpired: "approval_expired",
    ApprovalConsumed: "approval_consumed",
}


class Problem(BaseModel):
    """An error, as RFC 9457 describes it, plus gatekit's stable ``code``."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    decision: Decision | None = None  # when a decision may not be used


class ProblemError(Exception):
    """Raise to answer with a problem document."""

    def __init__(
        self, status: int, code: str, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.headers = status, code, detail, headers


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    decision: Decision | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    title = _TITLES.get(status, "Error")
    body = Problem(title=title, status=status, detail=detail, code=code, decision=decision)
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers=headers,
    )


_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting ``statuses`` as problem documents."""
    return {
        status: {"model": Problem, "content": {MEDIA_TYPE: {}}, "description": _TITLES[status]}
        for status in statuses
    }


# What any route can answer: a body over the limit, a server fault.
COMMON_RESPONSES = problem_responses(413, 500)
# ...and any route that needs a key: no valid key, a role too low, a bad request.
KEYED_RESPONSES = problem_responses(400, 401, 403, 413, 422, 500)


def install(app: FastAPI) -> None:
    """Answer every error as a problem document."""

    @app.exception_handler(ProblemError)
    async def _problem(request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.code, exc.detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem_response(422, "invalid_request", _describe(exc.errors()))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        # 400: a body FastAPI could not parse at all (e.g. JSON nested too deep).
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return problem_response(exc.status_code, code, str(exc.detail), headers=headers or None)

    @app.exception_handler(ValidationError)
    async def _gatekit_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        if exc.field in UNKNOWN_ID_FIELDS:  # the engine's "unknown decision/approval"
            return problem_response(404, "not_found", str(exc))
        return problem_response(422, "invalid_request", str(exc))

    @app.exception_handler(IdempotencyConflict)
    async def _idempotency(request: Request, exc: IdempotencyConflict) -> JSONResponse:
        return problem_response(409, "idempotency_conflict", str(exc))

    @app.exception_handler(ReviewConflict)
    async def _review_conflict(request: Request, exc: ReviewConflict) -> JSONResponse:
        return problem_response(409, "review_conflict", str(exc))

    @app.exception_handler(DecisionError)
    async def _decision(request: Request, exc: DecisionError) -> JSONResponse:
        code = next(c for t, c in DECISION_ERROR_CODES.items() if isinstance(exc, t))
        return problem_response(409, code, exc.reason, decision=exc.decision)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("gatekit server: %s %s failed", request.method, request.url.path)
        request.app.state.metrics.failed(exc)
        return problem_response(500, "internal_error", "the server could not answer")


def _allowed_methods(request: Request) -> str:
    """Every method the document lists for the request's path. Starlette's own
    ``Allow`` names only the first route that matched the path (``GET`` for
    ``/v1/keys``, which also takes ``POST``)."""
    asked = request.url.path.split("/")
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        parts = template.split("/")
        if len(parts) == len(asked) and all(
            part == given or (part.startswith("{") and part.endswith("}") and given)
            for part, given in zip(parts, asked, strict=True)
        ):
            methods.update(method.upper() for method in operations)
    return ", ".join(sorted(methods))


_HTTP_CODES = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed"}

# The engine names these fields only when it does not know the id.
UNKNOWN_ID_FIELDS = frozenset({"decision_id", "approval_id"})


def _describe(errors: Any) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)[:2000] or "invalid request"
