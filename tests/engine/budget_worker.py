"""One process spending a shared budget: ``python budget_worker.py <go-file> <policy> <calls>``.

Points at the database given by GATEKIT_* variables, waits for ``go-file`` so that
every process starts together, makes ``calls`` decisions from each of 8 threads,
and prints how many were allowed, as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gatekit import Client, Status

THREADS = 8


def main(go_file: str, policy: str, calls: str) -> None:
    with Client(policy=policy, agent_id="payer") as client:

        def spend(_: int) -> int:
            allowed = 0
            for _ in range(int(calls)):
                decision = client.decide(tool="pay", risk_level="low", arguments={"amount": 1})
                allowed += decision.status is Status.ALLOWED
            return allowed

        while not Path(go_file).exists():
            time.sleep(0.001)
        with ThreadPoolExecutor(THREADS) as pool:
            total = sum(pool.map(spend, range(THREADS)))
    print(json.dumps({"allowed": total}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
