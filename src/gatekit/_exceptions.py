"""The gatekit exception tree.

Every error gatekit raises is a ``GatekitError``; catch that to catch them all.

    GatekitError
    ├── DecisionError                 the engine answered; the answer means "do not run"
    │   ├── Blocked                   policy or a security check denied the action
    │   │   └── RateLimited           a rate limit or budget is exhausted (has .retry_after)
    │   ├── PendingReview             a human must decide first (has .approval_id)
    │   ├── Rejected                  a reviewer said no
    │   ├── ApprovalExpired           the approval window closed before a decision or use
    │   ├── ApprovalTimeout           we stopped waiting for a reviewer (has .approval_id)
    │   └── ApprovalConsumed          a single-use approval was already used
    ├── BackendError                  no valid decision could be had (fail closed)
    ├── ConfigurationError            invalid settings, found at construction time
    ├── ValidationError               invalid input (an Action, a policy, a request)
    ├── IdempotencyConflict           the same idempotency key was reused for another action
    └── ReviewConflict                an approval was already decided (approve vs. reject race)

``DecisionError`` subclasses carry the full ``.decision`` and its ``.reason``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gatekit._models import Decision

__all__ = [
    "ApprovalConsumed",
    "ApprovalExpired",
    "ApprovalTimeout",
    "BackendError",
    "Blocked",
    "ConfigurationError",
    "DecisionError",
    "GatekitError",
    "IdempotencyConflict",
    "PendingReview",
    "RateLimited",
    "Rejected",
    "ReviewConflict",
    "ValidationError",
]


class GatekitError(Exception):
    """Base class of every gatekit error."""


class DecisionError(GatekitError):
    """The engine decided, and the decision forbids running the action now."""

    def __init__(self, decision: Decision, reason: str | None = None) -> None:
        self.decision = decision
        self.reason = reason or decision.reason
        super().__init__(self.reason)


class Blocked(DecisionError):
    """Policy or a security check denied the action."""


class RateLimited(Blocked):
    """A rate limit or budget is exhausted; ``retry_after`` is in seconds, if known."""

    @property
    def retry_after(self) -> float | None:
        return self.decision.retry_after


class PendingReview(DecisionError):
    """The action waits for a human reviewer."""

    @property
    def approval_id(self) -> str | None:
        return self.decision.approval_id


class Rejected(DecisionError):
    """A reviewer rejected the action."""


class ApprovalExpired(DecisionError):
    """The approval expired; an expired approval is a denial."""


class ApprovalTimeout(DecisionError):
    """Waiting for a reviewer took longer than the caller allowed; the review stays
    open under ``approval_id``."""

    @property
    def approval_id(self) -> str | None:
        return self.decision.approval_id


class ApprovalConsumed(DecisionError):
    """The approval was already used once; approvals are single-use."""


class BackendError(GatekitError):
    """No valid decision could be obtained; the action must not run."""


class ConfigurationError(GatekitError):
    """Settings are invalid. Raised at construction, before anything runs."""


class ValidationError(GatekitError, ValueError):
    """Input is invalid; the message names the offending field."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class IdempotencyConflict(GatekitError):
    """An idempotency key was reused for a different action."""


class ReviewConflict(GatekitError):
    """The approval was already decided or is no longer open for review."""
