"""One process writing the audit log at full speed: ``python writer_worker.py <go> <calls>``.

Points at the database given by GATEKIT_* variables, waits for ``go-file`` so that
every process starts together, then makes ``calls`` gated calls (a decision and
an outcome record each) from each of 8 threads, and prints how many ran.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gatekit import Client

THREADS = 8


def main(go_file: str, calls: str) -> None:
    with Client(agent_id="writer") as client:

        @client.intercept(risk_level="low", operation_class="read")
        def read(n: int) -> int:
            return n

        def work(_: int) -> int:
            return sum(1 for i in range(int(calls)) if read(i) == i)

        while not Path(go_file).exists():
            time.sleep(0.001)
        with ThreadPoolExecutor(THREADS) as pool:
            ran = sum(pool.map(work, range(THREADS)))
    print(json.dumps({"ran": ran}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
