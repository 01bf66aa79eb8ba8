"""gatekit: a governance decision in front of every tool call an AI agent makes.

    import gatekit

    @gatekit.intercept(risk_level="low", operation_class="read")
    def read_balance(account: str) -> int: ...

Each call asks the decision engine first and runs only when the decision
allows it; if no valid decision can be had, it does not run (fail closed).
"""

from typing import TYPE_CHECKING, Any

from gatekit._client import AsyncClient, Client, default_client, intercept
from gatekit._exceptions import (
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalTimeout,
    BackendError,
    Blocked,
    ConfigurationError,
    DecisionError,
    GatekitError,
    IdempotencyConflict,
    PendingReview,
    RateLimited,
    Rejected,
    ReviewConflict,
    ValidationError,
)
from gatekit._models import (
    Action,
    Check,
    CheckOutcome,
    DataSensitivity,
    Decision,
    DecisionRequest,
    OperationClass,
    Outcome,
    RiskLevel,
    Status,
    Verdict,
)
from gatekit._settings import FailMode, Settings
from gatekit._version import __version__
from gatekit.backends import Backend, LocalBackend
from gatekit.dlp import DlpMode
from gatekit.gateway import Gateway, RunResult

if TYPE_CHECKING:
    from gatekit.backends.http import HttpBackend

__all__ = [
    "Action",
    "ApprovalConsumed",
    "ApprovalExpired",
    "ApprovalTimeout",
    "AsyncClient",
    "Backend",
    "BackendError",
    "Blocked",
    "Check",
    "CheckOutcome",
    "Client",
    "ConfigurationError",
    "DataSensitivity",
    "Decision",
    "DecisionError",
    "DecisionRequest",
    "DlpMode",
    "FailMode",
    "GatekitError",
    "Gateway",
    "HttpBackend",
    "IdempotencyConflict",
    "LocalBackend",
    "OperationClass",
    "Outcome",
    "PendingReview",
    "RateLimited",
    "Rejected",
    "ReviewConflict",
    "RiskLevel",
    "RunResult",
    "Settings",
    "Status",
    "ValidationError",
    "Verdict",
    "__version__",
    "default_client",
    "intercept",
]


def __getattr__(name: str) -> Any:
    # HttpBackend loads httpx on first use, not with ``import gatekit``.
    if name == "HttpBackend":
        from gatekit.backends.http import HttpBackend

        return HttpBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
