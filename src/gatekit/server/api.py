"""The versioned JSON API (``/v1``): decisions, preview, approvals, audit, keys.

Routes are plain functions: the engine does blocking I/O (SQLite, PostgreSQL), so
FastAPI runs them in its thread pool, off the event loop.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from gatekit import api_keys
from gatekit._models import Action, Decision, DecisionRequest, Outcome, Status
from gatekit._problems import NOT_FOUND
from gatekit.api_keys import ApiKeyRecord, Principal, Role
from gatekit.audit import KeyRing, read_witness, verify
from gatekit.audit.export import export_jsonl
from gatekit.audit.witness import WITNESS_FILE
from gatekit.dlp import mask_value
from gatekit.server.auth import engine_of, require
from gatekit.server.metrics import metrics_of
from gatekit.server.problems import KEYED_RESPONSES, ProblemError, problem_responses
from gatekit.server.routing import ApiRoute

router = APIRouter(prefix="/v1", responses=KEYED_RESPONSES, route_class=ApiRoute)

# Documented per route, beyond KEYED_RESPONSES.
_JSON_BODY = problem_responses(415)
_UNKNOWN = problem_responses(404)
_CONFLICT = problem_responses(409)

Agent = Annotated[Principal, Depends(require(Role.AGENT))]
Reviewer = Annotated[Principal, Depends(require(Role.REVIEWER))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

# Ids are letters, digits, "_" and "-" (dec_…, apr_…, 16 hex for keys); anything else
# (a NUL, a slash) could not name a record, and some databases cannot even look it up.
_ID = r"^[A-Za-z0-9_-]{1,128}$"
DecisionId = Annotated[str, PathParam(pattern=_ID, description="dec_…")]
ApprovalId = Annotated[str, PathParam(pattern=_ID, description="apr_…")]
KeyId = Annotated[str, PathParam(pattern=_ID, description="The key id: gk_<key id>_…")]


# -- decisions (agents) -----------------------------------------------------------------


def _received(body: DecisionRequest) -> DecisionRequest:
    """The request with its argument and metadata values DLP-masked before the
    engine stores or records them: a caller other than gatekit's own client (which
    masks before sending) may send real values. Policy and delegation still judge
    the values received, as for a request prepared in the engine's own process."""
    action = body.action
    masked = {"arguments": mask_value(action.arguments), "metadata": mask_value(action.metadata)}
    if masked == {"arguments": action.arguments, "metadata": action.metadata}:
        return body
    sent = body.model_copy(update={"action": action.model_copy(update=masked)})
    return sent._client_side(unmasked=action, chain=None)


def _answer(decision: Decision) -> Response:
    """The decision as JSON, written here: a Response returned from a plain route is
    sent as is, where a model would be validated again in another trip through the
    thread pool (the hot path's cost is mostly such trips, not the engine)."""
    return Response(decision.model_dump_json(), media_type="application/json")


@router.post(
    "/decisions",
    response_model=Decision,
    tags=["decisions"],
    responses={**_JSON_BODY, **_CONFLICT},
)
def decide(body: DecisionRequest, request: Request, _: Agent) -> Response:
    """Decide on an action: allowed, blocked or pending review; recorded and audited.
    The same idempotency key returns the same decision."""
    started = time.perf_counter()
    decision = engine_of(request).decide(_received(body))
    metrics_of(request).decided(decision, time.perf_counter() - started)
    return _answer(decision)


@router.post("/preview", response_model=Decision, tags=["decisions"], responses=_JSON_BODY)
def preview(body: DecisionRequest, request: Request, _: Agent) -> Response:
    """What a decision would be, as a dry run: nothing recorded, no counter moved."""
    return _answer(engine_of(request).preview(_received(body)))


@router.get(
    "/decisions/{decision_id}", response_model=Decision, tags=["decisions"], responses=_UNKNOWN
)
def get_decision(decision_id: DecisionId, request: Request, _: Agent) -> Response:
    return _answer(engine_of(request).get_decision(decision_id))


@router.post(
    "/decisions/{decision_id}/consume",
    response_model=Decision,
    tags=["decisions"],
    responses={**_JSON_BODY, **_UNKNOWN, **_CONFLICT},
)
def consume(decision_id: DecisionId, body: DecisionRequest, request: Request, _: Agent) -> Response:
    """Use a decision to run its action, re-checked against the action sent: an
    approval is single-use. Refused uses answer 409 with the decision."""
    return _answer(engine_of(request).consume(decision_id, _received(body)))


@router.post(
    "/decisions/{decision_id}/outcome",
    status_code=204,
    tags=["decisions"],
    responses={**_JSON_BODY, **_UNKNOWN},
)
def report_outcome(decision_id: DecisionId, body: Outcome, request: Request, _: Agent) -> Response:
    """Record what happened when the action ran."""
    engine_of(request).report(decision_id, body)
    return Response(status_code=204)


# -- approvals (reviewers) -------------------------------------------------------------


class ApprovalView(BaseModel):
    """A decision under review, with the (DLP-masked) action it is about."""

    decision: Decision
    action: Action | None


class ReviewBody(BaseModel):
    comment: str = Field(default="", max_length=2000)


@router.get("/approvals", response_model=list[ApprovalView], tags=["approvals"])
def list_approvals(
    request: Request,
    _: Reviewer,
    status: Status = Status.PENDING_REVIEW,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ApprovalView]:
    """Decisions by review status, newest first (pending ones by default)."""
    engine = engine_of(request)
    if status is Status.PENDING_REVIEW:
        decisions = [d for d in engine.pending() if d.status is Status.PENDING_REVIEW]
    else:
        decisions = engine.store.list(status, limit)
    decisions = [d for d in decisions if d.approval_id is not None][:limit]
    return [_view(request, d) for d in decisions]


@router.get(
    "/approvals/{approval_id}", response_model=ApprovalView, tags=["approvals"], responses=_UNKNOWN
)
def show_approval(approval_id: ApprovalId, request: Request, _: Reviewer) -> ApprovalView:
    """One review: the decision (reason, rules and checks) and the masked action."""
    decision = engine_of(request).store.find_by_approval(approval_id)
    if decision is None:
        raise ProblemError(404, NOT_FOUND, f"no approval {approval_id!r}")
    return _view(request, decision)


@router.post(
    "/approvals/{approval_id}/approve",
    response_model=Decision,
    tags=["approvals"],
    responses={**_JSON_BODY, **_UNKNOWN, **_CONFLICT},
)
def approve(approval_id: ApprovalId, body: ReviewBody, request: Request, who: Reviewer) -> Decision:
    """Approve, as the key's holder. Answers 409 if it was already decided."""
    return engine_of(request).approve(approval_id, reviewer=who.name, comment=body.comment)


@router.post(
    "/approvals/{approval_id}/reject",
    response_model=Decision,
    tags=["approvals"],
    responses={**_JSON_BODY, **_UNKNOWN, **_CONFLICT},
)
def reject(approval_id: ApprovalId, body: ReviewBody, request: Request, who: Reviewer) -> Decision:
    """Reject, as the key's holder. Answers 409 if it was already decided."""
    return engine_of(request).reject(approval_id, reviewer=who.name, comment=body.comment)


def _view(request: Request, decision: Decision) -> ApprovalView:
    action = engine_of(request).store.get_action(decision.decision_id)
    return ApprovalView(decision=decision, action=action)


# -- audit (admins) -----------------------------------------------------------------------


class VerifyReport(BaseModel):
    ok: bool
    records: int
    chains: int
    checkpoints: int
    problem: str | None
    warnings: list[str]


@router.get(
    "/audit/export",
    tags=["audit"],
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
def export_audit(request: Request, _: Admin) -> StreamingResponse:
    """The whole log as JSON lines (heads, checkpoints, records), for offline
    verification with ``gatekit audit verify --input``."""
    store = engine_of(request).store
    engine_of(request).flush()
    return StreamingResponse(_lines(store), media_type="application/x-ndjson")


def _lines(store: Any) -> Iterator[str]:
    buffer = io.StringIO()
    export_jsonl(store, buffer)
    yield buffer.getvalue()


@router.post(
    "/audit/verify",
    response_model=VerifyReport,
    tags=["audit"],
    responses=problem_responses(503),
)
def verify_audit(request: Request, _: Admin) -> VerifyReport:
    """Check every writer's chain and signed checkpoints with the server's trusted keys."""
    engine = engine_of(request)
    engine.flush()
    ring = KeyRing(request.app.state.settings.data_dir / "keys")
    keys = ring.public_keys() if ring.directory.is_dir() else {}
    if not keys:
        raise ProblemError(503, "no_trusted_keys", "the server has no trusted audit keys")
    witness = request.app.state.settings.data_dir / WITNESS_FILE
    witnesses = [read_witness(witness)] if witness.exists() else []
    report = verify(engine.store, keys, witnesses=witnesses)
    return VerifyReport(
        ok=report.ok,
        records=report.records,
        chains=report.chains,
        checkpoints=report.checkpoints,
        problem=None if report.problem is None else str(report.problem),
        warnings=[str(warning) for warning in report.warnings],
    )


@router.get("/audit/tail", tags=["audit"])
def tail_audit(
    request: Request, _: Admin, limit: Annotated[int, Query(ge=1, le=1000)] = 50
) -> list[dict[str, Any]]:
    """The newest records of every writer's chain, oldest first."""
    engine = engine_of(request)
    engine.flush()
    store = engine.store
    records = []
    for head in store.audit_heads():
        after = max(0, head.seq - limit)
        records += list(store.audit_records(head.writer_id, after_seq=after))
    records.sort(key=lambda record: record.at)
    return [record.to_json() for record in records[-limit:]]


# -- API keys (admins) ------------------------------------------------------------------


class NewKey(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: Role


class KeyView(BaseModel):
    key_id: str
    name: str
    role: Role
    created_at: float
    revoked_at: float | None = None


class CreatedKey(KeyView):
    key: str = Field(description="The key itself, shown only now.")


@router.get("/keys", response_model=list[KeyView], tags=["keys"])
def list_keys(request: Request, _: Admin) -> list[KeyView]:
    return [_key_view(record) for record in api_keys.list_keys(engine_of(request).store)]


@router.post(
    "/keys", response_model=CreatedKey, status_code=201, tags=["keys"], responses=_JSON_BODY
)
def new_key(body: NewKey, request: Request, _: Admin) -> CreatedKey:
    token, record = api_keys.create_key(engine_of(request).store, name=body.name, role=body.role)
    return CreatedKey(key=token, **_key_view(record).model_dump())


@router.delete("/keys/{key_id}", status_code=204, tags=["keys"], responses=_UNKNOWN)
def delete_key(key_id: KeyId, request: Request, _: Admin) -> Response:
    """Revoke a key: every replica refuses it from the next request on."""
    if not api_keys.revoke_key(engine_of(request).store, key_id):
        raise ProblemError(404, NOT_FOUND, f"no API key {key_id!r}")
    return Response(status_code=204)


def _key_view(record: ApiKeyRecord) -> KeyView:
    return KeyView(
        key_id=record.key_id,
        name=record.name,
        role=record.role,
        created_at=record.created_at,
        revoked_at=record.revoked_at,
    )
