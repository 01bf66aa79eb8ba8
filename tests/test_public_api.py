import json
import subprocess
import sys

import gatekit

EXPECTED_PUBLIC_NAMES = [
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
    "RunResult",
    "ReviewConflict",
    "RiskLevel",
    "Settings",
    "Status",
    "ValidationError",
    "Verdict",
    "__version__",
    "default_client",
    "intercept",
]


def test_public_api_is_pinned() -> None:
    assert sorted(gatekit.__all__) == sorted(EXPECTED_PUBLIC_NAMES)
    for name in gatekit.__all__:
        assert hasattr(gatekit, name), name


def test_import_gatekit_pulls_in_no_framework_or_server() -> None:
    code = (
        "import json, sys, gatekit; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(json.loads(subprocess.check_output([sys.executable, "-c", code], text=True)))
    forbidden = {
        "langchain",
        "langchain_core",
        "langgraph",
        "crewai",
        "mcp",
        "fastapi",
        "uvicorn",
        "starlette",
        "typer",
        "gatekit_langchain",
        "gatekit_crewai",
        "gatekit_mcp",
    }
    assert loaded & forbidden == set()
    assert "gatekit" in loaded


def test_exceptions_form_one_tree() -> None:
    for name in gatekit.__all__:
        obj = getattr(gatekit, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, gatekit.GatekitError), name
    assert issubclass(gatekit.RateLimited, gatekit.Blocked)
