"""An agent process the crash tests kill: ``python crash_worker.py <marker> <mode>``.

Asks (through the default, durable ``Client()``) to run a high-risk transfer under
a fixed idempotency key, waiting for a reviewer. The body appends one line to
``marker``; in mode ``hang`` it then hangs, so the test can kill it mid-action;
in mode ``reported`` it hangs just after the guard has reported the outcome (which
may still be queued for commit). Prints ``RAN`` or the refusal's class name.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gatekit import Client, DecisionError


def main(marker: str, mode: str) -> None:
    with Client(agent_id="payments-agent", approval_timeout=60) as client:
        try:
            with client.guard(
                tool="transfer",
                risk_level="high",
                operation_class="financial",
                arguments={"to": "ACME", "amount": 250},
                idempotency_key="transfer-ACME-250",
            ):
                with Path(marker).open("a") as out:
                    out.write("ran\n")
                print("RAN", flush=True)
                if mode == "hang":
                    time.sleep(600)
            if mode == "reported":
                print("REPORTED", flush=True)
                time.sleep(600)
        except DecisionError as refused:
            print(type(refused).__name__, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
