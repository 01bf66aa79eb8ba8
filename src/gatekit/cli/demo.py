"""``gatekit demo``: a scripted agent against the embedded engine, nothing to start."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gatekit._client import Client
from gatekit._exceptions import DecisionError
from gatekit._models import Decision
from gatekit.backends import LocalBackend
from gatekit.policy import load_policy

DEMO_POLICY = Path(__file__).with_name("demo_policy.yaml")


# (tool, action fields, what the tool does when it runs)
_SCRIPT: list[tuple[str, dict[str, Any], Callable[[], str]]] = [
    (
        "read_balance",
        {
            "risk_level": "low",
            "operation_class": "read",
            "systems_touched": ["ledger"],
            "arguments": {"account": "ACME-001"},
        },
        lambda: "1,200.00 EUR",
    ),
    (
        "drop_table",
        {
            "risk_level": "medium",
            "operation_class": "delete",
            "systems_touched": ["prod"],
            "arguments": {"table": "customers"},
        },
        lambda: "table dropped",
    ),
    (
        "pay_invoice",
        {
            "risk_level": "high",
            "operation_class": "financial",
            "systems_touched": ["payments"],
            "arguments": {"invoice": "INV-42", "amount": 980.0},
        },
        lambda: "paid 980.00 EUR",
    ),
]


def _play_reviewer(backend: LocalBackend) -> None:
    """Approve the first pending action, as a human would on the review page."""
    while not (pending := backend.pending()):
        threading.Event().wait(0.02)
    backend.approve(
        pending[0].approval_id or "", reviewer="alice@example.com", comment="invoice checked"
    )


def _run(
    client: Client, tool: str, fields: dict[str, Any], body: Callable[[], str]
) -> tuple[Decision, str]:
    try:
        with client.guard(tool=tool, **fields) as decision:
            return decision, body()
    except DecisionError as refused:
        return refused.decision, "(did not run)"


def demo() -> None:
    """Run a small scripted agent: one call allowed, one blocked, one reviewed and approved."""
    backend = LocalBackend(policy=load_policy(DEMO_POLICY))
    client = Client(backend, agent_id="demo-agent", approval_timeout=10)
    reviewer = threading.Thread(target=_play_reviewer, args=(backend,), daemon=True)
    reviewer.start()
    table = Table(title=f"gatekit demo: embedded engine, policy {DEMO_POLICY.name}")
    for column in ("tool", "decision", "reason", "result"):
        table.add_column(column)
    for tool, fields, body in _SCRIPT:
        decision, result = _run(client, tool, fields, body)
        table.add_row(tool, decision.status.value, decision.reason, result)
    reviewer.join(timeout=5)
    Console().print(table)
