"""The core in one file: decorate functions, guard a block, play the reviewer.

Run: uv run python examples/quickstart.py
"""

from __future__ import annotations

import threading

import gatekit
from gatekit import LocalBackend

backend = LocalBackend()  # the embedded engine with the built-in policy
client = gatekit.Client(backend, agent_id="billing-agent", approval_timeout=10)


@client.intercept(risk_level="low", operation_class="read", systems_touched=["ledger"])
def read_balance(account: str) -> str:
    return f"{account}: 1,200.00 EUR"


@client.intercept(risk_level="high", operation_class="financial", systems_touched=["payments"])
def pay_invoice(invoice: str, amount: float) -> str:
    return f"paid {invoice} ({amount:.2f} EUR)"


def reviewer() -> None:
    """Stands in for a human approving on the review page."""
    while not (pending := backend.pending()):
        threading.Event().wait(0.02)
    print(f"reviewer sees: {pending[0].tool} — {pending[0].reason}")
    backend.approve(pending[0].approval_id or "", reviewer="alice", comment="matches the PO")


def main() -> None:
    print(read_balance("ACME-001"))

    threading.Thread(target=reviewer, daemon=True).start()
    print(pay_invoice("INV-42", 980.0))

    try:
        with client.guard(tool="send_newsletter", risk_level="medium", wait=False):
            print("never printed: a medium-risk action needs review first")
    except gatekit.PendingReview as pending:
        print(f"send_newsletter is waiting for review (approval {pending.approval_id})")


if __name__ == "__main__":
    main()
