"""``POST /v1/delegations``: a child token for a caller that holds a valid parent.

The caller (an agent API key) sends its chain and the child it wants as JSON, and
a request proof in ``Gatekit-Delegation-Proof``: signed with its key (the leaf's
delegatee) over the exact body bytes, for the target ``delegate``. The proof is
checked against the bytes this server received, never a re-serialisation. The
checks are the verifier's own (``DelegationVerifier.verify_issuance``); the child
is signed with the server's issuing key (``GATEKIT_DELEGATION_ISSUER_KEY``, a
registered root) and names the caller in ``for``.

Every answer is audited: ``delegation_issued`` or ``delegation_refused`` with its
code (never a token, a proof or an API key). A refusal is a problem document whose
``code`` is the verifier's reason code, and nothing is issued.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

import pydantic
from fastapi import APIRouter, Depends, FastAPI, Header, Request

from gatekit._exceptions import ConfigurationError
from gatekit._settings import Settings
from gatekit.api_keys import Principal
from gatekit.delegation import AgentKey, DelegationConfig, DelegationRefused, DelegationVerifier
from gatekit.delegation.issuing import PROOF_HEADER, ChildRequest, DelegationIssuer, IssuedChild
from gatekit.delegation.records import DelegationStore
from gatekit.engine import Engine
from gatekit.server.api import Agent
from gatekit.server.auth import engine_of
from gatekit.server.problems import KEYED_RESPONSES, MEDIA_TYPE, Problem, ProblemError
from gatekit.server.routing import ApiRoute

__all__ = ["install", "router"]

logger = logging.getLogger("gatekit.server")

_PROBLEM = {"model": Problem, "content": {MEDIA_TYPE: {}}}
router = APIRouter(
    prefix="/v1",
    tags=["delegation"],
    route_class=ApiRoute,
    responses={
        **KEYED_RESPONSES,
        403: {**_PROBLEM, "description": "Refused, with the verifier's reason code"},
        503: {**_PROBLEM, "description": "The server issues no delegations"},
    },
)

# Refusals that are the server's doing, not the caller's.
_UNAVAILABLE = frozenset({"delegation_issuing_disabled", "issuer_untrusted"})


def install(app: FastAPI) -> None:
    """Add the route to ``app``, with the issuing key its settings name (loaded now:
    a missing or unsafe key file stops the server from starting)."""
    settings: Settings = app.state.settings
    app.state.delegation_issuer = _issuer(app.state.engine, settings)
    app.include_router(router)


def _issuer(engine: Engine, settings: Settings) -> DelegationIssuer | None:
    path = settings.delegation_issuer_key
    if path is None:
        return None
    if not isinstance(engine.store, DelegationStore):
        raise ConfigurationError(f"{type(engine.store).__name__} cannot keep delegation keys")
    try:
        key = AgentKey.load(path)
    except (OSError, ValueError, TypeError) as exc:  # not a file, not a PEM key, encrypted
        problem = f"GATEKIT_DELEGATION_ISSUER_KEY: cannot load {path}: {exc}"
        raise ConfigurationError(problem) from None
    verifier = DelegationVerifier(engine.store, DelegationConfig.from_settings(settings))
    return DelegationIssuer(key, verifier)


async def _raw_body(request: Request) -> bytes:
    """The body exactly as received: what the proof's hash is checked against."""
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]
Proof = Annotated[
    str | None,
    Header(
        alias=PROOF_HEADER,
        description="A request proof (EdDSA JWS, op `delegate`) over the exact body bytes.",
    ),
]


@router.post("/delegations", response_model=IssuedChild, status_code=201)
def issue_child(
    who: Agent, body: ChildRequest, raw: RawBody, request: Request, proof: Proof = None
) -> IssuedChild:
    """Issue a child of the caller's chain, signed by the server's root key, if the
    proof, the chain, the caller (the leaf's delegatee) and the child (narrower than
    every hop, within the depth limit, not outliving its parent) all check out."""
    issuer: DelegationIssuer | None = request.app.state.delegation_issuer
    if issuer is None:
        _refuse(request, who, body, "delegation_issuing_disabled")
    try:
        # FastAPI parsed (and documents) ``body``; what is issued is read from the
        # very bytes the proof signs, so the two cannot differ.
        wanted = ChildRequest.model_validate_json(raw)
    except pydantic.ValidationError:
        _refuse(request, who, body, "body_mismatch")
    try:
        issued = issuer.issue(wanted, proof=proof, body=raw, now=time.time())
    except DelegationRefused as refused:
        _refuse(request, who, wanted, refused.code)
    except Exception as exc:  # a check that breaks must refuse, never issue
        logger.exception("gatekit server: issuing a delegation failed")
        _refuse(request, who, wanted, f"issuing_error.{type(exc).__name__}")
    _audit(request, "delegation_issued", who, issuer.audit_data(wanted, issued))
    return issued


def _refuse(request: Request, who: Principal, body: ChildRequest, code: str) -> NoReturn:
    data = {"code": code, "delegatee": body.delegatee, "depth": len(body.chain) + 1}
    _audit(request, "delegation_refused", who, data)
    if code in _UNAVAILABLE:
        status = 503
    elif code.startswith("issuing_error."):
        status = 500
    else:
        status = 403
    raise ProblemError(status, code, f"no delegation was issued: {code}")


def _audit(request: Request, kind: str, who: Principal, data: dict[str, Any]) -> None:
    engine = engine_of(request)
    client = request.client.host if request.client else None
    event_data = {**data, "api_key_id": who.key_id, "client": client}
    engine.store.append_audit(engine.audit.event(kind, None, event_data, datetime.now(UTC)))
    engine.audit.committed()
