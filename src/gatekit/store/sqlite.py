"""SQLite: the embedded default, one file under the data directory.

WAL lets readers run beside the writer. Every write is ``BEGIN IMMEDIATE``, so
writers (threads here, or other processes on the same file) take the database
lock up front and wait for each other up to the busy timeout, never deadlock.
``synchronous=NORMAL`` (the default here) survives a process crash; a power
loss may drop the last commits. Use ``synchronous="full"`` to trade speed for that.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from gatekit.store._migrations import migrate
from gatekit.store._sql import SqlStore

DB_FILE = "gatekit.db"
Synchronous = Literal["normal", "full"]


@contextmanager
def _setup_lock(path: Path) -> Iterator[None]:
    with path.with_name(path.name + ".setup-lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class SqliteStore(SqlStore):
    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout: float = 30.0,
        synchronous: Synchronous = "normal",
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection, serialised by a lock: SQLite has one writer at a time anyway.
        self._db = sqlite3.connect(
            self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        with _setup_lock(self.path):
            # Switching to WAL takes a lock SQLite's busy handler does not wait for,
            # so processes opening a new database at once take turns here.
            self._db.execute("PRAGMA journal_mode=WAL")
            with self._write() as cur:
                migrate(cur)
        self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")

    @classmethod
    def in_directory(cls, data_dir: Path | str, **options: object) -> SqliteStore:
        return cls(Path(data_dir) / DB_FILE, **options)  # type: ignore[arg-type]

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                self._db.rollback()
                raise
            self._db.commit()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            yield self._db.cursor()

    def close(self) -> None:
        with self._lock:
            self._db.close()
