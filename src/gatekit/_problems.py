"""The stable ``code``s of the decision server's problem documents (RFC 9457), shared
by the server, which writes them, and ``HttpBackend``, which maps them back to the
exceptions the embedded engine raises. Framework-free: the client side must not
import the server (an optional extra)."""

from __future__ import annotations

from gatekit._exceptions import (
    ApprovalConsumed,
    ApprovalExpired,
    Blocked,
    DecisionError,
    PendingReview,
    RateLimited,
    Rejected,
)

__all__ = [
    "DECISION_ERROR_CODES",
    "IDEMPOTENCY_CONFLICT",
    "INVALID_REQUEST",
    "MEDIA_TYPE",
    "NOT_FOUND",
    "REVIEW_CONFLICT",
    "decision_error_for",
]

MEDIA_TYPE = "application/problem+json"

# A refused use of a decision (409, with the ``decision``), both ways. Order
# matters when writing: a subclass (RateLimited) comes before its base (Blocked).
DECISION_ERROR_CODES: dict[type[DecisionError], str] = {
    RateLimited: "rate_limited",
    Blocked: "blocked",
    PendingReview: "pending_review",
    Rejected: "rejected",
    ApprovalExpired: "approval_expired",
    ApprovalConsumed: "approval_consumed",
}

IDEMPOTENCY_CONFLICT = "idempotency_conflict"  # 409: a key reused for another action
REVIEW_CONFLICT = "review_conflict"  # 409: the approval was already decided
INVALID_REQUEST = "invalid_request"  # 422: the request is invalid
NOT_FOUND = "not_found"  # 404: no such decision, approval or key

_ERROR_FOR_CODE = {code: kind for kind, code in DECISION_ERROR_CODES.items()}


def decision_error_for(code: str) -> type[DecisionError] | None:
    """The ``DecisionError`` subclass a problem ``code`` stands for, if any."""
    return _ERROR_FOR_CODE.get(code)
