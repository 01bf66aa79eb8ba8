"""Durable decisions through the decision server (HttpBackend), next to the embedded engine.

    uv run --no-sync python bench/bench_server.py [--calls 4000] [--no-postgres]

For SQLite and for PostgreSQL: ``Client.decide`` on a low-risk action, each call
a new decision committed with its audit record, from 1, 8 and 32 concurrent
clients (threads, each with its own ``Client``), first on the embedded engine
(``LocalBackend``) and then through ``HttpBackend`` against one ``gatekit serve``
process (one worker) on the same machine. Prints decisions per second and the
p50/p99 latency of one decision as its caller sees it, and the HTTP hop's cost
at 1 client (HTTP p50 minus embedded p50). The client and the server share the
machine's CPUs, so the load average is printed before and after each part.
SQLite runs with WAL and synchronous=NORMAL; PostgreSQL is started from the
Debian binaries with its default durability (fsync on, synchronous_commit on).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gatekit import Action, Backend, Client, LocalBackend, Settings  # noqa: E402
from tests.backends.live_server import LiveServer  # noqa: E402

CLIENTS = (1, 8, 32)
WARM_UP = 200


@dataclass
class Result:
    label: str
    clients: int
    rate: float
    p50_ms: float
    p99_ms: float
    cpu: str = ""  # CPU time per decision, which the load average distorts less

    def line(self) -> str:
        return (
            f"{self.label:<24} {self.clients:>3} clients {self.rate:9,.0f} decisions/s"
            f"   p50 {self.p50_ms:7.2f} ms   p99 {self.p99_ms:7.2f} ms{self.cpu}"
        )


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def action(i: int) -> Action:
    return Action(
        tool="bench_read",
        risk_level="low",
        operation_class="read",
        arguments={"record": i},
        agent_id="bench-agent",
    )


def run(
    label: str, backend: Backend, clients: int, calls: int, server_pid: int | None = None
) -> Result:
    """``calls`` decisions split across ``clients`` threads; every call timed, and
    the CPU time this process (and the server's, when given) spent per decision."""
    warm = Client(backend)
    for i in range(WARM_UP):
        warm.decide(action(i))
    per_client = max(1, calls // clients)
    samples: list[list[int]] = [[] for _ in range(clients)]
    start_line = threading.Barrier(clients + 1)

    def work(index: int) -> None:
        client, mine, clock = Client(backend), samples[index], time.perf_counter_ns
        start_line.wait()
        for i in range(per_client):
            began = clock()
            client.decide(action(i))
            mine.append(clock() - began)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    server_cpu = cpu_seconds(server_pid) if server_pid is not None else None
    own_cpu = time.process_time()
    start_line.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    ordered = sorted(sample for mine in samples for sample in mine)
    p50 = ordered[len(ordered) // 2] / 1e6
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1e6
    cpu = f"   CPU/decision: client {(time.process_time() - own_cpu) / len(ordered) * 1e3:.2f} ms"
    if server_pid is not None and server_cpu is not None:
        server_now = cpu_seconds(server_pid) or server_cpu
        cpu += f", server {(server_now - server_cpu) / len(ordered) * 1e3:.2f} ms"
    return Result(label, clients, len(ordered) / elapsed, p50, p99, cpu)


def compare(
    store: str, embedded: Callable[[], LocalBackend], server: LiveServer, calls: int
) -> None:
    print(f"\n{store} — load average before: {load()}")
    results: dict[tuple[str, int], Result] = {}
    backend = embedded()
    try:
        for clients in CLIENTS:
            result = run(f"{store} embedded", backend, clients, calls)
            results["embedded", clients] = result
            print(result.line(), flush=True)
    finally:
        backend.close()
    http = server.backend(max_in_flight=max(CLIENTS))
    for clients in CLIENTS:
        result = run(f"{store} HTTP", http, clients, calls, server.process.pid)
        results["http", clients] = result
        print(result.line(), flush=True)
    hop = results["http", 1].p50_ms - results["embedded", 1].p50_ms
    print(f"HTTP hop at 1 client: +{hop:.2f} ms p50 — load average after: {load()}")


@contextmanager
def sqlite_side(tmp: Path) -> Iterator[tuple[Callable[[], LocalBackend], LiveServer]]:
    server = LiveServer.start(tmp / "server")
    try:
        yield (lambda: LocalBackend.from_settings(Settings(data_dir=tmp / "embedded"))), server
    finally:
        server.stop()


@contextmanager
def postgres_side(
    tmp: Path, url: str | None
) -> Iterator[tuple[Callable[[], LocalBackend], LiveServer] | None]:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import PostgresServer, find_pg_bin  # the test suite's throwaway server

    cluster = None
    if url is None:
        bindir = find_pg_bin()
        if bindir is None:
            print("\nPostgreSQL: binaries not found, skipped")
            yield None
            return
        cluster = PostgresServer.start(bindir, fast=False)
        embedded_url = cluster.url(cluster.create_database())
        server_url = cluster.url(cluster.create_database())
    else:
        embedded_url = server_url = url
    try:
        server = LiveServer.start(tmp / "server-pg", database_url=server_url)
        try:
            settings = Settings(data_dir=tmp / "embedded-pg", database_url=embedded_url)
            yield (lambda: LocalBackend.from_settings(settings)), server
        finally:
            server.stop()
    finally:
        if cluster is not None:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=4000, help="decisions per measurement")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--database-url", help="use this PostgreSQL instead of starting one")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs, load average {load()} (timings are wall-clock)")
    with tempfile.TemporaryDirectory(prefix="gatekit-bench-") as name:
        tmp = Path(name)
        with sqlite_side(tmp) as (embedded, server):
            compare("SQLite", embedded, server, args.calls)
        if not args.no_postgres:
            with postgres_side(tmp, args.database_url) as side:
                if side is not None:
                    compare("PostgreSQL", side[0], side[1], args.calls)


if __name__ == "__main__":
    main()
