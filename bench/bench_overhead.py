"""Overhead of a fully gated call, and audit verification speed.

    uv run --no-sync python bench/bench_overhead.py [--calls 20000] [--no-postgres]

A gated call = ``client.intercept`` on a low-risk function: client decide (DLP,
digest), decision + audit record committed (with the previous call's outcome
record: one commit per call), function body, outcome queued. Overhead = gated
latency minus the bare call, p50/p99. For scale, one bare SQLite WAL
insert+commit of a 1 KB row on the same disk; and durable gated calls from 8
threads at once (calls per second).
SQLite runs with WAL and synchronous=NORMAL (durable against a process crash;
a power loss may drop the last commits). PostgreSQL is started from the Debian
binaries with its default durability (fsync on, synchronous_commit on).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from gatekit import Action, Client, DecisionRequest, LocalBackend, Outcome, Settings
from gatekit.audit import AuditLog, load_public_keys, verify
from gatekit.store import MemoryStore, Store

ROOT = Path(__file__).resolve().parent.parent


def _percentiles(samples: list[int]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] / 1000, ordered[int(len(ordered) * 0.99)] / 1000


def _time_calls(fn: Callable[[int], int], calls: int) -> list[int]:
    for i in range(min(1000, calls)):  # warm up caches, prepared statements, pools
        fn(i)
    samples = []
    clock = time.perf_counter_ns
    for i in range(calls):
        start = clock()
        fn(i)
        samples.append(clock() - start)
    return samples


def bare(x: int) -> int:
    return x * 2


def gated_overhead(label: str, backend: LocalBackend, calls: int, bare_p50: float) -> None:
    client = Client(backend, agent_id="bench-agent")
    gated = client.intercept(bare, tool="bench_read", risk_level="low", operation_class="read")
    samples = _time_calls(gated, calls)
    p50, p99 = _percentiles(samples)
    rate = len(samples) / (sum(samples) / 1e9)
    print(
        f"{label:<34} gated p50 {p50:8.1f} µs  p99 {p99:8.1f} µs  "
        f"overhead p50 {p50 - bare_p50:8.1f} µs  {rate:9,.0f} calls/s"
    )


def threaded(label: str, backend: LocalBackend, calls: int, threads: int = 8) -> None:
    """Gated calls from ``threads`` threads at once: total calls per second."""
    client = Client(backend, agent_id="bench-agent")
    gated = client.intercept(bare, tool="bench_read", risk_level="low", operation_class="read")
    per_thread = max(1, calls // threads)

    def work() -> None:
        for i in range(per_thread):
            gated(i)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    print(f"{label:<34} {threads} threads: {per_thread * threads / elapsed:10,.0f} gated calls/s")


def bare_sqlite_insert(calls: int) -> None:
    """One INSERT + COMMIT of a 1 KB row in WAL mode, synchronous=NORMAL: the floor."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "bare.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        row = "x" * 1024

        def insert(i: int) -> int:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO t (body) VALUES (?)", (row,))
            db.execute("COMMIT")
            return i

        p50, p99 = _percentiles(_time_calls(insert, calls))
        db.close()
    print(f"{'bare SQLite insert+commit (1 KB)':<34} p50 {p50:8.1f} µs  p99 {p99:8.1f} µs")


def engine_only(label: str, backend: LocalBackend, calls: int) -> None:
    """decide + report straight on the engine: what the store and audit cost, no client."""
    request = DecisionRequest.for_action(
        Action(tool="bench_read", risk_level="low", arguments={"x": 1}, agent_id="bench-agent")
    )
    success = Outcome(status="success")

    def call(_: int) -> int:
        backend.report(backend.decide(request).decision_id, success)
        return 0

    p50, p99 = _percentiles(_time_calls(call, calls))
    print(f"{label:<34} engine decide+report p50 {p50:8.1f} µs  p99 {p99:8.1f} µs")


def _fill(store: Store, writer: str, records: int) -> None:
    log = AuditLog(store, writer_id=writer)
    now = datetime.now(UTC)
    data = {
        "status": "allowed",
        "reason": "low-risk action",
        "action_digest": "a" * 64,
        "action": {"tool": "bench_read", "arguments": {"x": 1}, "agent_id": "bench-agent"},
    }
    for _ in range(records):
        store.append_audit(log.event("decision", "dec_bench", data, now))


def verify_speed(label: str, store: Store, keys_dir: Path) -> None:
    keys = load_public_keys([keys_dir])
    start = time.perf_counter()
    report = verify(store, keys)
    elapsed = time.perf_counter() - start
    status = "ok" if report.ok else f"FAILED: {report.problem}"
    print(
        f"{label:<34} verify {report.records} records in {elapsed:.2f} s = "
        f"{report.records / elapsed:,.0f} records/s ({status})"
    )


def run_sqlite(calls: int, verify_records: int, bare_p50: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        full = LocalBackend.from_settings(
            Settings(data_dir=Path(tmp) / "full", sqlite_synchronous="full")
        )
        gated_overhead("SQLite (WAL, synchronous=FULL)", full, calls // 4, bare_p50)
        threaded("SQLite (synchronous=FULL)", full, calls // 4)
        full.close()
    with tempfile.TemporaryDirectory() as tmp:
        backend = LocalBackend.from_settings(Settings(data_dir=Path(tmp)))
        gated_overhead("SQLite (WAL, synchronous=NORMAL)", backend, calls, bare_p50)
        threaded("SQLite", backend, calls)
        engine_only("SQLite", backend, calls)
        _fill(backend.store, "bench-fill", max(0, verify_records - 2 * calls))
        backend.close()
        backend = LocalBackend.from_settings(Settings(data_dir=Path(tmp)))
        verify_speed("SQLite", backend.store, Path(tmp) / "keys")
        backend.close()


def run_postgres(calls: int, verify_records: int, bare_p50: float, url: str | None) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import PostgresServer, find_pg_bin  # the test suite's throwaway server

    server = None
    if url is None:
        bindir = find_pg_bin()
        if bindir is None:
            print("PostgreSQL: binaries not found, skipped")
            return
        server = PostgresServer.start(bindir, fast=False)
        url = server.url()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=Path(tmp), database_url=url)
            backend = LocalBackend.from_settings(settings)
            gated_overhead("PostgreSQL (fsync on, pooled)", backend, calls, bare_p50)
            engine_only("PostgreSQL", backend, calls)
            _fill(backend.store, "bench-fill", max(0, verify_records - 2 * calls))
            backend.close()
            backend = LocalBackend.from_settings(settings)
            verify_speed("PostgreSQL", backend.store, Path(tmp) / "keys")
            backend.close()
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--pg-calls", type=int, default=5_000)
    parser.add_argument("--verify-records", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--database-url", help="use this PostgreSQL instead of starting one")
    args = parser.parse_args()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (timings are wall-clock)")
    bare_p50, bare_p99 = _percentiles(_time_calls(bare, args.calls))
    print(f"{'bare call':<34} p50 {bare_p50:8.2f} µs  p99 {bare_p99:8.2f} µs")
    bare_sqlite_insert(args.calls)
    memory = LocalBackend(store=MemoryStore())
    gated_overhead("in-memory store (no durability)", memory, args.calls, bare_p50)
    engine_only("in-memory store", memory, args.calls)
    run_sqlite(args.calls, args.verify_records, bare_p50)
    if not args.no_postgres:
        run_postgres(args.pg_calls, args.verify_records, bare_p50, args.database_url)


if __name__ == "__main__":
    main()
