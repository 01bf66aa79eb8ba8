"""SQLite: the embedded default, one file under the data directory.

WAL lets readers run beside the writer. Every write is ``BEGIN IMMEDIATE``, so
writers (threads here, or other processes on the same file) take the database
lock up front and wait for each other up to the busy timeout, never deadlock;
past it the write raises, and the client fails closed. ``synchronous=NORMAL``
(the default here) survives a process crash; a power loss may drop the last
commits. Use ``synchronous="full"`` to trade speed for that.

Threads that write decisions and audit records at the same time share one
transaction (group commit, ``gatekit.store._group_commit``): each is released
once its own rows are committed, and the commit, its page writes and its fsync
are paid once for all of them.

WAL checkpoints stay off the gated call's path: automatic checkpoints (which
the committing call would run) are off, and a background thread runs a passive
checkpoint every ``checkpoint_interval`` seconds, on its own connection, so
the WAL stays bounded without any call waiting for it.

Decisions and audit records are nobody else's business: a data directory
created here is 0700, and the database, its ``-wal``/``-shm`` files and the
setup lock are 0600. Existing files and directories keep their modes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Literal

from gatekit._exceptions import BackendError, ConfigurationError
from gatekit.store._migrations import migrate
from gatekit.store._sql import SqlStore

DB_FILE = "gatekit.db"
Synchronous = Literal["normal", "full"]


def make_private_directory(path: Path) -> None:
    """Create ``path`` (0700) unless it exists, and make sure we can write in it.

    An existing directory keeps its mode: it may be the user's choice (``.``, say).
    Raises OSError when the directory cannot be created or written.
    """
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


def _create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists. SQLite gives the -wal
    and -shm files the database file's mode, so they are private too."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


@contextmanager
def _setup_lock(path: Path) -> Iterator[None]:
    fd = os.open(path.with_name(path.name + ".setup-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class SqliteStore(SqlStore):
    def __init__(
        self,
        path: Path | str,
        *,
        busy_timeout: float = 30.0,
        synchronous: Synchronous = "normal",
        checkpoint_interval: float = 1.0,
    ) -> None:
        super().__init__(patience=busy_timeout)
        self.path = Path(path)
        try:
            make_private_directory(self.path.parent)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot use {self.path.parent} for the gatekit database: {_reason(exc)}"
            ) from exc
        self._lock = threading.Lock()
        try:
            self._open(busy_timeout, synchronous)
        except (sqlite3.Error, OSError) as exc:
            # Corrupt, truncated, unreadable: say which file, in one line.
            raise BackendError(
                f"cannot open the gatekit database {self.path}: {_reason(exc)}"
            ) from exc
        self._checkpointer = _WalCheckpointer(self.path, checkpoint_interval)

    def _open(self, busy_timeout: float, synchronous: Synchronous) -> None:
        _create_private_file(self.path)
        # One connection, serialised by a lock: SQLite has one writer at a time anyway.
        self._db = sqlite3.connect(
            self.path,
            timeout=busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,  # a batch's inserts have one text per row count
        )
        try:
            with _setup_lock(self.path):
                # Switching to WAL takes a lock SQLite's busy handler does not wait for,
                # so processes opening a new database at once take turns here.
                self._db.execute("PRAGMA journal_mode=WAL")
                with self._write() as cur:
                    migrate(cur)
            self._db.execute(f"PRAGMA synchronous={synchronous.upper()}")
            self._db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job
        except BaseException:
            self._db.close()
            raise

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
        self._checkpointer.stop()
        with self._lock:
            self._db.close()


class _WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds in a daemon
    thread with its own connection: it never waits for a writer, and no writer waits
    for it."""

    def __init__(self, path: Path, interval: float) -> None:
        self._path = path
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="gatekit-wal-checkpoint", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        db = sqlite3.connect(self._path, timeout=0, isolation_level=None)
        try:
            while not self._stopped.wait(self._interval):
                with suppress(sqlite3.Error):  # busy or locked: the next round tries again
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            db.close()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)


def _reason(exc: BaseException) -> str:
    """The error's own words, on one line (an OSError without its repeated path)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return " ".join(text.split())
