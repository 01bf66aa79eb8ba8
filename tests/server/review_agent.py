"""An agent process for the review page's browser tests: one gated tool call through
a real ``gatekit serve``, waiting in ``guard()`` for a human to decide.

    python review_agent.py URL OUTPUT RUN_ID MEMO      (the agent key in GATEKIT_API_KEY)

The tool appends a line to OUTPUT. Prints what happened and exits 0 when the tool
ran, 3 when a reviewer rejected it, 4 when no approval came in time.

The client is the real one, with ``HttpBackend`` (the agent key from the environment).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from gatekit import ApprovalExpired, ApprovalTimeout, Client, HttpBackend, Rejected


def _pay(output: Path, run_id: str) -> None:
    """The tool: one line per run."""
    with output.open("a", encoding="utf-8") as tool_log:
        tool_log.write(f"paid {run_id}\n")


def main() -> int:
    url, output, run_id, memo = sys.argv[1:5]
    backend = HttpBackend(url, api_key=os.environ["GATEKIT_API_KEY"])
    with Client(backend, agent_id="billing-bot", approval_timeout=90.0) as client:
        try:
            with client.guard(
                tool="pay_invoice",
                operation_class="financial",
                risk_level="high",
                run_id=run_id,
                arguments={"amount": 120, "memo": memo, "card": "4111 1111 1111 1111"},
            ):
                _pay(Path(output), run_id)
        except Rejected:
            print("rejected", flush=True)
            return 3
        except (ApprovalExpired, ApprovalTimeout):
            print("no approval", flush=True)
            return 4
    print("ran", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
