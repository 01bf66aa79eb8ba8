"""What an orchestrator and a monitoring system ask: alive, ready, metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gatekit._models import Action, DecisionRequest
from gatekit.server.auth import engine_of
from gatekit.server.metrics import metrics_of
from gatekit.server.problems import COMMON_RESPONSES, ProblemError, problem_responses

logger = logging.getLogger("gatekit.server")

_PROBE = DecisionRequest.for_action(
    Action(tool="gatekit.readyz", operation_class="read", risk_level="low")
)

router = APIRouter(tags=["operations"], responses=COMMON_RESPONSES)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
def readyz(request: Request) -> dict[str, str]:
    """The store answers and a policy is loaded; 503 otherwise."""
    engine = engine_of(request)
    try:
        engine.store.audit_heads()
        engine.preview(_PROBE)  # the policy evaluates (a dry run: nothing recorded)
    except Exception as exc:
        logger.warning("gatekit server: not ready: %s", exc)
        raise ProblemError(503, "not_ready", "the store or the policy is not available") from None
    return {"status": "ready"}


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format: decisions by status, decision latency, pending reviews,
    store errors."""
    body = generate_latest(metrics_of(request).registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
