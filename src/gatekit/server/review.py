"""The review page (``/review``): reviewers sign in with their API key, see what
agents wait on, and approve or reject it.

Server-rendered (Jinja2, every value escaped) with one small script that keeps
the pending list current by polling a fragment of it. The key is sent once, in
the sign-in form's body, and never kept in the cookie, a URL or a log; the
session (see ``review_session``) names the key, whose record is read again on
every request. Every refusal is audited, as the API's are.

Routes are plain functions: the engine blocks on its store, so they run in the
thread pool. None of them is part of the API's OpenAPI document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Annotated, Any, NoReturn
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, FastAPI, Form, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from gatekit._exceptions import ReviewConflict, ValidationError
from gatekit._models import Action, Decision, Status
from gatekit._version import __version__
from gatekit.api_keys import ApiKeyStore, Principal, Role
from gatekit.server.auth import authorize, engine_of, refuse
from gatekit.server.problems import ProblemError
from gatekit.server.review_session import (
    COOKIE,
    Session,
    Sessions,
    cross_site_reason,
    load_secret,
    token_matches,
)

HOME = "/review"
SIGN_IN = "/review/sign-in"
MAX_COMMENT = 2000  # as the API's ReviewBody
LIST_ARGUMENTS_CHARS = 4000  # a card shows this much; the item's own page shows all

_SECURITY_HEADERS = {
    # Only this page's own script and style run, even if a value slipped past escaping.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self';"
        " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("gatekit.server", "templates"),
    autoescape=True,  # every template: agent-supplied text is never markup
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_TEMPLATES.filters["path"] = lambda value: quote(str(value), safe="")

_STATIC = {
    name: (resources.files("gatekit.server").joinpath("static", name).read_bytes(), media)
    for name, media in (("review.css", "text/css"), ("review.js", "text/javascript"))
}


class _Stop(Exception):
    """Ends a request early with ``response``: a redirect or a refusal page."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


class _ReviewRoute(APIRoute):
    """Answers a ``_Stop``, and gives every answer the page's security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def secured(request: Request) -> Response:
            try:
                response = await handler(request)
            except _Stop as stop:
                response = stop.response
            for name, value in _SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return secured


router = APIRouter(prefix=HOME, include_in_schema=False, route_class=_ReviewRoute)


def install(app: FastAPI) -> None:
    """Serve the review page from ``app`` (its session key is read or made now)."""
    app.state.review_sessions = Sessions(load_secret(app.state.settings))
    app.include_router(router)


# -- what a reviewer sees -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Item:
    """A decision under review, as the page shows it (the action is DLP-masked)."""

    decision: Decision
    action: Action | None

    @property
    def approval_id(self) -> str:
        return self.decision.approval_id or ""

    @property
    def risk(self) -> str:
        return self.action.risk_level.value if self.action else "unknown"

    @property
    def agent(self) -> str:
        return (self.action and self.action.agent_id) or "—"

    @property
    def run(self) -> str:
        return (self.action and self.action.run_id) or "—"

    @property
    def requested(self) -> str:
        return _when(self.decision.created_at)

    @property
    def expires(self) -> str:
        return _when(self.decision.expires_at) if self.decision.expires_at else "—"

    @property
    def arguments(self) -> str:
        return _pretty(self.action.arguments if self.action else {})

    @property
    def arguments_excerpt(self) -> str:
        text = self.arguments
        if len(text) <= LIST_ARGUMENTS_CHARS:
            return text
        return text[:LIST_ARGUMENTS_CHARS] + "\n… (open the item for the rest)"

    @property
    def metadata(self) -> str:
        return _pretty(self.action.metadata if self.action else {})


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _pending(request: Request) -> list[Item]:
    """Open reviews, newest first; past their window they expire and drop out here."""
    engine = engine_of(request)
    open_reviews = [
        d for d in engine.pending() if d.status is Status.PENDING_REVIEW and d.approval_id
    ]
    return [Item(d, engine.store.get_action(d.decision_id)) for d in open_reviews]


def _find(request: Request, approval_id: str) -> Item | None:
    engine = engine_of(request)
    found = engine.store.find_by_approval(approval_id)
    if found is None:
        return None
    decision = engine.get_decision(found.decision_id)  # expired now if its window closed
    return Item(decision, engine.store.get_action(decision.decision_id))


# -- pages ------------------------------------------------------------------------------


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    session = _sessions(request).read(request)
    if session is not None and session.key_id is not None:
        return _redirect(HOME)
    fresh = session is None
    session = session or _sessions(request).issue()
    response = _page("sign_in.html", csrf=session.csrf, error=None)
    if fresh:
        _sessions(request).save(response, request, session)
    return response


@router.post("/sign-in")
def sign_in(
    request: Request,
    api_key: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    session = _checked_form(request, csrf)
    try:
        principal = authorize(request, api_key.strip() or None, Role.REVIEWER)
    except ProblemError as refused:  # audited by authorize; the key is not echoed back
        return _page("sign_in.html", refused.status, csrf=session.csrf, error=refused.detail)
    response = _redirect(HOME)
    _sessions(request).save(response, request, _sessions(request).issue(principal.key_id))
    return response


@router.post("/sign-out")
def sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
    _checked_form(request, csrf)
    response = _redirect(SIGN_IN)
    Sessions.end(response, request)
    return response


@router.get("")
def pending_page(request: Request, done: str | None = None) -> Response:
    session, reviewer = _signed_in(request, page=True)
    return _page(
        "pending.html",
        reviewer=reviewer,
        csrf=session.csrf,
        items=_pending(request),
        notice=_notice(request, done),
    )


@router.get("/pending")
def pending_fragment(request: Request) -> Response:
    """The list alone, which the page's script polls."""
    _signed_in(request, page=False)
    return _page("_pending.html", items=_pending(request))


@router.get("/approvals/{approval_id}")
def approval_page(approval_id: str, request: Request) -> Response:
    session, reviewer = _signed_in(request, page=True)
    item = _find(request, approval_id)
    if item is None:
        return _not_found(reviewer, session)
    return _item_page(item, reviewer, session)


@router.post("/approvals/{approval_id}/approve")
def approve(
    approval_id: str,
    request: Request,
    comment: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return _review(request, approval_id, Status.APPROVED, comment, csrf)


@router.post("/approvals/{approval_id}/reject")
def reject(
    approval_id: str,
    request: Request,
    comment: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    return _review(request, approval_id, Status.REJECTED, comment, csrf)


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in _STATIC:
        raise ProblemError(404, "not_found", f"no file {name!r}")
    body, media = _STATIC[name]
    return Response(body, media_type=media, headers={"Cache-Control": "max-age=3600"})


def _review(
    request: Request, approval_id: str, verdict: Status, comment: str, csrf: str
) -> Response:
    session = _checked_form(request, csrf)
    reviewer = _reviewer_of(request, session)
    item = _find(request, approval_id)
    if item is None:
        return _not_found(reviewer, session)
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        problem = _Problem("Not recorded", f"A comment has at most {MAX_COMMENT} characters.")
        return _item_page(item, reviewer, session, problem, 422)
    engine = engine_of(request)
    act = engine.approve if verdict is Status.APPROVED else engine.reject
    try:
        act(approval_id, reviewer=reviewer.name, comment=comment)
    except ReviewConflict as conflict:  # decided meanwhile, or separation of duties
        now = _find(request, approval_id) or item
        return _item_page(now, reviewer, session, _Problem.of(conflict, now), 409)
    except ValidationError as invalid:
        return _item_page(item, reviewer, session, _Problem("Not recorded", str(invalid)), 422)
    return _redirect(f"{HOME}?done={quote(approval_id, safe='')}")


def _item_page(
    item: Item,
    reviewer: Principal,
    session: Session,
    problem: _Problem | None = None,
    status: int = 200,
) -> HTMLResponse:
    return _page(
        "approval.html", status, reviewer=reviewer, csrf=session.csrf, item=item, problem=problem
    )


@dataclass(frozen=True, slots=True)
class _Problem:
    title: str
    detail: str

    @classmethod
    def of(cls, conflict: ReviewConflict, now: Item) -> _Problem:
        if now.decision.status is Status.PENDING_REVIEW:
            return cls("Not allowed", str(conflict))
        return cls("Already decided", f"{conflict}. Nothing was changed.")


def _notice(request: Request, done: str | None) -> str | None:
    """What the reviewer just did, read back from the store (not from the URL)."""
    if not done:
        return None
    found = engine_of(request).store.find_by_approval(done)
    if found is None or found.status not in {Status.APPROVED, Status.REJECTED}:
        return None
    return f"{found.tool}: {found.status.value} by {found.reviewer}."


# -- who is asking --------------------------------------------------------------------------


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.review_sessions
    return sessions


def _signed_in(request: Request, *, page: bool) -> tuple[Session, Principal]:
    """The session and its reviewer. Without one, a page sends the browser to sign
    in; anything else (the polled list) is refused, and the refusal audited."""
    session = _sessions(request).read(request)
    if session is None or session.key_id is None:
        if page:
            raise _Stop(_redirect(SIGN_IN))
        _refuse(request, 401, "unauthenticated", _no_session(request), None)
    return session, _reviewer_of(request, session)


def _reviewer_of(request: Request, session: Session) -> Principal:
    """The session's key holder, read from the store now: a revoked key, or one no
    longer allowed to review, ends the session."""
    key_id = session.key_id
    if key_id is None:  # a session that has not signed in (yet)
        _refuse(request, 401, "unauthenticated", "not signed in", None)
    store = engine_of(request).store
    record = store.api_key(key_id) if isinstance(store, ApiKeyStore) else None
    if record is None or record.revoked_at is not None:
        _refuse(request, 401, "unauthenticated", "the session's API key was revoked", key_id)
    if not record.role.allows(Role.REVIEWER):
        reason = f"this {record.role.value} key may not review"
        _refuse(request, 403, "forbidden", reason, key_id)
    return Principal(record.key_id, record.name, record.role)


def _checked_form(request: Request, csrf: str) -> Session:
    """The session a form was posted in, once the post is shown to come from this
    page: same origin, and the session's own CSRF token."""
    session = _sessions(request).read(request)
    key_id = session.key_id if session else None
    cross_site = cross_site_reason(request)
    if cross_site is not None:
        _refuse(request, 403, "cross_site", f"form refused: {cross_site}", key_id)
    if session is None:
        _refuse(request, 403, "csrf", f"form refused: {_no_session(request)}", None)
    if not token_matches(session, csrf):
        _refuse(request, 403, "csrf", "form refused: a missing or wrong CSRF token", key_id)
    return session


def _no_session(request: Request) -> str:
    return "an invalid or expired session" if COOKIE in request.cookies else "no session"


def _refuse(request: Request, status: int, code: str, reason: str, key_id: str | None) -> NoReturn:
    """Audit the refusal (``auth.refuse``), then stop with a page that says it."""
    try:
        refuse(request, status, code, reason, key_id)
    except ProblemError as refused:
        response = _page("refused.html", refused.status, detail=refused.detail)
        if status == 401:
            Sessions.end(response, request)
        raise _Stop(response) from None


# -- answers ------------------------------------------------------------------------------


def _page(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("reviewer", None)
    context.setdefault("csrf", "")
    context["version"] = __version__
    body = _TEMPLATES.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status)


def _not_found(reviewer: Principal, session: Session) -> HTMLResponse:
    detail = "No review has this id."
    return _page("refused.html", 404, reviewer=reviewer, csrf=session.csrf, detail=detail)


def _redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)  # after a POST: GET the next page
