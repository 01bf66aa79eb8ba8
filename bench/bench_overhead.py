"""What a fully gated call costs, from the floor up, in one run on one disk.

    uv run --no-sync python bench/bench_overhead.py [--calls 20000] [--no-postgres]

A gated call = ``client.intercept`` on a low-risk function with the default
policy: the client builds the action (argument names, types and sizes), digests
the real arguments, the engine decides, the decision and its audit record are
committed (with the previous call's outcome record: one commit per call), the
function runs, its outcome is queued.

Rows, each with p50 and p99 latency and calls per second:

* the bare function call, and one bare SQLite WAL insert+commit of a 1 KB row
  (synchronous=NORMAL) on the same disk: the floors;
* the gated call with the in-memory store (no durability);
* durable on SQLite (WAL, synchronous=NORMAL: survives a process crash; the
  default), with synchronous=FULL (survives a power loss: an fsync per commit,
  shared by threads committing at once), and on PostgreSQL (started from the
  Debian binaries with its default durability: fsync on, synchronous_commit on);
* the same durable calls from 8 threads at once (latency per call, total rate).

Then, for scale: the engine alone (decide + report, no client) and how fast
``gatekit audit verify`` reads the log back. The machine's load average is
printed before and after (timings are wall-clock; a loaded host inflates them).
Prints numbers, a Markdown table of them at the end; asserts nothing.
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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gatekit import Action, Client, DecisionRequest, LocalBackend, Outcome, Settings
from gatekit.audit import AuditLog, load_public_keys, verify
from gatekit.store import MemoryStore, Store

ROOT = Path(__file__).resolve().parent.parent
THREADS = 8


@dataclass
class Row:
    label: str
    p50: float  # µs
    p99: float  # µs
    rate: float  # calls per second

    def show(self) -> None:
        print(
            f"{self.label:<44} p50 {self.p50:9.1f} µs  p99 {self.p99:9.1f} µs  "
            f"{self.rate:10,.0f} /s",
            flush=True,
        )


ROWS: list[Row] = []


def _row(label: str, samples: list[int], elapsed: float) -> Row:
    ordered = sorted(samples)
    row = Row(
        label,
        ordered[len(ordered) // 2] / 1000,
        ordered[int(len(ordered) * 0.99)] / 1000,
        len(samples) / elapsed,
    )
    row.show()
    ROWS.append(row)
    return row


def _time_calls(label: str, fn: Callable[[int], object], calls: int) -> Row:
    for i in range(min(1000, calls)):  # warm up caches, prepared statements, pools
        fn(i)
    samples = []
    clock = time.perf_counter_ns
    start = time.perf_counter()
    for i in range(calls):
        before = clock()
        fn(i)
        samples.append(clock() - before)
    return _row(label, samples, time.perf_counter() - start)


def _time_threads(label: str, fn: Callable[[int], object], calls: int) -> Row:
    """``calls`` calls from THREADS threads at once: latency of each, and the total rate."""
    per_thread = max(1, calls // THREADS)
    for i in range(min(200, per_thread)):
        fn(i)
    samples: list[list[int]] = [[] for _ in range(THREADS)]
    ready = threading.Barrier(THREADS + 1)

    def work(mine: list[int]) -> None:
        clock = time.perf_counter_ns
        ready.wait()
        for i in range(per_thread):
            before = clock()
            fn(i)
            mine.append(clock() - before)

    workers = [threading.Thread(target=work, args=(mine,)) for mine in samples]
    for worker in workers:
        worker.start()
    ready.wait()
    start = time.perf_counter()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return _row(label, [s for mine in samples for s in mine], elapsed)


def bare(x: int) -> int:
    return x * 2


def _gated(backend: LocalBackend) -> Callable[[int], int]:
    client = Client(backend, agent_id="bench-agent")
    gated: Callable[[int], int] = client.intercept(
        bare, tool="bench_read", risk_level="low", operation_class="read"
    )
    return gated


def bare_sqlite_insert(calls: int, directory: Path) -> None:
    """One INSERT + COMMIT of a 1 KB row in WAL mode, synchronous=NORMAL: the floor."""
    db = sqlite3.connect(directory / "bare.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
    row = "x" * 1024

    def insert(i: int) -> int:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t (body) VALUES (?)", (row,))
        db.execute("COMMIT")
        return i

    _time_calls("bare SQLite WAL insert+commit (1 KB)", insert, calls)
    db.close()


def engine_only(label: str, backend: LocalBackend, calls: int) -> None:
    """decide + report straight on the engine: what the store and audit cost, no client."""
    request = DecisionRequest.for_action(
        Action(tool="bench_read", risk_level="low", arguments={"x": 1}, agent_id="bench-agent")
    )
    success = Outcome(status="success")

    def call(_: int) -> None:
        backend.report(backend.decide(request).decision_id, success)

    _time_calls(label, call, calls)


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
        f"{label:<44} verify {report.records} records in {elapsed:.2f} s = "
        f"{report.records / elapsed:,.0f} records/s ({status})",
        flush=True,
    )


def run_sqlite(calls: int, full_calls: int, verify_records: int, directory: Path) -> None:
    backend = LocalBackend.from_settings(Settings(data_dir=directory / "normal"))
    gated = _gated(backend)
    _time_calls("gated, SQLite (WAL, synchronous=NORMAL)", gated, calls)
    full = LocalBackend.from_settings(
        Settings(data_dir=directory / "full", sqlite_synchronous="full")
    )
    gated_full = _gated(full)
    _time_calls("gated, SQLite (WAL, synchronous=FULL)", gated_full, full_calls)
    _time_threads(f"{THREADS} threads, SQLite (synchronous=NORMAL)", gated, calls)
    _time_threads(f"{THREADS} threads, SQLite (synchronous=FULL)", gated_full, full_calls)
    full.close()
    engine_only("engine decide+report, SQLite", backend, calls)
    _fill(backend.store, "bench-fill", max(0, verify_records - 2 * calls))
    backend.close()
    backend = LocalBackend.from_settings(Settings(data_dir=directory / "normal"))
    verify_speed("SQLite", backend.store, directory / "normal" / "keys")
    backend.close()


def run_postgres(calls: int, verify_records: int, url: str | None, directory: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import PostgresServer, find_pg_bin  # the test suite's throwaway server

    server = None
    if url is None:
        bindir = find_pg_bin()
        if bindir is None:
            print("PostgreSQL: binaries not found, skipped")
            return
        server = PostgresServer.start(bindir, fast=False)  # fsync and synchronous_commit on
        url = server.url()
    try:
        settings = Settings(data_dir=directory / "postgres", database_url=url)
        backend = LocalBackend.from_settings(settings)
        gated = _gated(backend)
        _time_calls("gated, PostgreSQL (local, fsync on, pooled)", gated, calls)
        _time_threads(f"{THREADS} threads, PostgreSQL", gated, calls)
        engine_only("engine decide+report, PostgreSQL", backend, calls)
        _fill(backend.store, "bench-fill", max(0, verify_records - 2 * calls))
        backend.close()
        backend = LocalBackend.from_settings(settings)
        verify_speed("PostgreSQL", backend.store, directory / "postgres" / "keys")
        backend.close()
    finally:
        if server is not None:
            server.stop()


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _markdown(load_before: str, load_after: str) -> None:
    print()
    print(f"{os.cpu_count()} CPUs, load average {load_before} before and {load_after} after")
    print()
    print("| case | p50 µs | p99 µs | calls/s |")
    print("|---|---:|---:|---:|")
    for row in ROWS:
        print(f"| {row.label} | {row.p50:,.1f} | {row.p99:,.1f} | {row.rate:,.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--full-calls", type=int, default=5_000, help="synchronous=FULL")
    parser.add_argument("--pg-calls", type=int, default=5_000)
    parser.add_argument("--verify-records", type=int, default=100_000)
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--database-url", help="use this PostgreSQL instead of starting one")
    args = parser.parse_args()

    load_before = _load()
    print(f"machine: {os.cpu_count()} CPUs, load average {load_before} (timings are wall-clock)")
    _time_calls("bare call", bare, args.calls)
    with tempfile.TemporaryDirectory(prefix="gatekit-bench-") as tmp:
        directory = Path(tmp)
        bare_sqlite_insert(args.calls, directory)
        memory = LocalBackend(store=MemoryStore())
        _time_calls("gated, in memory (no durability)", _gated(memory), args.calls)
        engine_only("engine decide+report, in memory", memory, args.calls)
        run_sqlite(args.calls, args.full_calls, args.verify_records, directory)
        if not args.no_postgres:
            run_postgres(args.pg_calls, args.verify_records, args.database_url, directory)
    load_after = _load()
    print(f"machine load average after: {load_after}")
    _markdown(load_before, load_after)


if __name__ == "__main__":
    main()
