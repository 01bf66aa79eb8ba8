"""What each kind of audit record says. Metadata and digests only: the action in a
record is the one the engine received, already DLP-masked by the client."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gatekit._models import Action, Decision, Outcome


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def decision_data(decision: Decision, action: Action) -> dict[str, Any]:
    return {
        "status": decision.status.value,
        "reason": decision.reason,
        "rule_ids": decision.rule_ids,
        "checks": [check.model_dump(mode="json") for check in decision.checks],
        "action_digest": decision.action_digest,
        "approval_id": decision.approval_id,
        "expires_at": _iso(decision.expires_at),
        "idempotency_key": decision.idempotency_key,
        "action": action.model_dump(mode="json"),
    }


def review_data(decision: Decision, status: str, reviewer: str, comment: str) -> dict[str, Any]:
    return {
        "approval_id": decision.approval_id,
        "status": status,
        "reviewer": reviewer,
        "comment": comment,
        "action_digest": decision.action_digest,
    }


def status_data(decision: Decision, status: str, reason: str) -> dict[str, Any]:
    """A change the engine made by itself: consumption, expiry, or a refused use."""
    return {
        "approval_id": decision.approval_id,
        "status": status,
        "reason": reason,
        "action_digest": decision.action_digest,
    }


def outcome_data(outcome: Outcome) -> dict[str, Any]:
    return {"status": outcome.status, "detail": outcome.detail}
