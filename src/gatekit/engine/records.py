"""The decision record's data, written from bytes already made.

``gatekit.audit.events.decision_data`` says what a decision record holds; this
writes the canonical JSON of exactly that (a test pins the two together) from
the action's canonical JSON, made once per request (``DecisionRequest.action_json``),
so the action is not serialised again for its record. Every other value is the
engine's own (strings, lists of strings, null), which need no float or key checks.
"""

from __future__ import annotations

from typing import Any

from gatekit._canonical import typed_json
from gatekit._models import Check, Decision

__all__ = ["decision_record_data"]


def decision_record_data(decision: Decision, action_json: bytes) -> bytes:
    rest = typed_json(
        {
            "action_digest": decision.action_digest,
            "approval_id": decision.approval_id,
            "checks": [_check(check) for check in decision.checks],
            "expires_at": None if decision.expires_at is None else decision.expires_at.isoformat(),
            "idempotency_key": decision.idempotency_key,
            "reason": decision.reason,
            "rule_ids": decision.rule_ids,
            "status": decision.status.value,
        }
    )
    # "action" sorts before every other key: the object is it, then the rest.
    return b'{"action":' + action_json + b"," + rest[1:]


def _check(check: Check) -> dict[str, Any]:
    """``check.model_dump(mode="json")``, without the serializer round trip."""
    return {
        "detail": check.detail,
        "name": check.name,
        "outcome": check.outcome.value,
        "path": check.path,
    }
