"""A separate process racing another one: ``python race_worker.py <go-file> <task> <arg>``.

Points at the database given by GATEKIT_* variables, waits for ``go-file`` so that
both processes start together, does its task, and prints the result as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from gatekit import Client, GatekitError, LocalBackend, Settings


def main(go_file: str, task: str, arg: str) -> None:
    backend = LocalBackend.from_settings(Settings())
    client = Client(backend, agent_id="agent-1")
    while not Path(go_file).exists():
        time.sleep(0.001)
    try:
        if task == "decide":
            decision = client.decide(
                tool="pay", risk_level="high", idempotency_key=arg, arguments={"invoice": "INV-7"}
            )
            result = {"decision_id": decision.decision_id, "approval_id": decision.approval_id}
        else:
            review = backend.approve if task == "approve" else backend.reject
            decision = review(arg, reviewer=f"{task}-reviewer")
            result = {"status": decision.status.value}
    except GatekitError as error:
        result = {"error": type(error).__name__, "message": str(error)}
    finally:
        client.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main(*sys.argv[1:4])
