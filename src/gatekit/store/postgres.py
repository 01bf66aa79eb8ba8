"""PostgreSQL: shared state for several gatekit processes or server replicas.

Connections come from a psycopg pool. Races are settled by the database: unique
constraints for idempotency keys, ``SELECT … FOR UPDATE`` for compare-and-set
updates, and a compare-and-set on each writer's audit chain head. Threads of one
process that decide at the same time share a transaction (group commit): every
decision of a writer locks its chain head until the commit, so one commit for
several of them is what lets them overlap.

Every session gets ``lock_timeout`` and ``statement_timeout`` when given (the
settings derive them from ``decision_timeout``): a session that holds a row lock
makes the decisions waiting for it fail (closed) instead of stalling them all.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from gatekit._exceptions import BackendError, ConfigurationError
from gatekit.store._migrations import migrate
from gatekit.store._sql import SqlStore

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the PostgreSQL store needs psycopg: pip install 'gatekit-core[postgres]'"
    ) from exc

_MIGRATION_LOCK = 0x6761_7465  # any constant shared by every gatekit process

Connection = psycopg.Connection[tuple[Any, ...]]


class PostgresStore(SqlStore):
    placeholder = "%s"
    lock_rows = " FOR UPDATE"
    lock_key = "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 10.0,
        lock_timeout: float | None = None,
        statement_timeout: float | None = None,
    ) -> None:
        """``timeout`` bounds connecting and waiting for a pooled connection;
        ``lock_timeout`` and ``statement_timeout`` (seconds, None for the server's
        default) bound every statement's wait for a lock and its running time."""
        # A group commit waits for a connection, then for the chain head's row lock.
        super().__init__(patience=timeout + (lock_timeout or timeout))
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError("database_url must be a postgresql:// URL")
        self._where = _describe_target(url)
        self._session_settings = {
            name: f"{max(1, round(seconds * 1000))}ms"
            for name, seconds in (
                ("lock_timeout", lock_timeout),
                ("statement_timeout", statement_timeout),
            )
            if seconds is not None
        }
        # Try one connection first: the pool would retry in the background, logging
        # each failure, and end with a timeout that has lost the reason.
        connect_timeout = _probe(url, timeout, self._where)
        self._pool: ConnectionPool[Connection] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            configure=self._configure,
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout:
            self._pool.close()
            raise BackendError(
                f"cannot connect to PostgreSQL at {self._where} within {connect_timeout} s: "
                "the connection pool did not open"
            ) from None
        self._set_up(timeout)

    def _configure(self, conn: Connection) -> None:
        for name, value in self._session_settings.items():
            conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        conn.commit()  # the pool takes back only idle connections

    def _set_up(self, timeout: float) -> None:
        """Apply migrations, one process at a time. Waiting for another process's
        migration may take longer than a decision's statements are allowed."""
        setup_limit = f"{max(1, round(timeout * 1000))}ms"
        try:
            with self._write() as cur:
                cur.execute("SELECT set_config('lock_timeout', %s, true)", (setup_limit,))
                cur.execute("SELECT set_config('statement_timeout', %s, true)", (setup_limit,))
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                migrate(cur, self.placeholder)
        except psycopg.Error as exc:
            self._pool.close()
            raise BackendError(
                f"cannot set up the gatekit schema in PostgreSQL at {self._where}: {_one_line(exc)}"
            ) from exc
        except BaseException:
            self._pool.close()
            raise

    @contextmanager
    def _write(self) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
        # The pool commits when the block ends cleanly and rolls back otherwise.
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    _read = _write

    def close(self) -> None:
        self._pool.close()


def _probe(url: str, timeout: float, where: str) -> int:
    """Open and close one connection; returns the connect timeout used (whole
    seconds, at least 2: libpq's granularity). Failure is one BackendError with
    the server's reason and never the password."""
    seconds = max(2, math.ceil(timeout))
    try:
        psycopg.connect(url, connect_timeout=seconds).close()
    except psycopg.Error as exc:
        reason = _one_line(exc)
        password = _password(url)
        if password:
            reason = reason.replace(password, "***")
        raise BackendError(
            f"cannot connect to PostgreSQL at {where} within {seconds} s: {reason}"
        ) from None  # the original may quote the URL
    return seconds


def _describe_target(url: str) -> str:
    """``host:port/database`` for messages; never the user's password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "the configured database_url"
    host = str(info.get("host") or "localhost")
    port = str(info.get("port") or 5432)
    return f"{host}:{port}/{info.get('dbname') or info.get('user') or ''}"


def _password(url: str) -> str | None:
    try:
        return str(conninfo_to_dict(url).get("password") or "") or None
    except psycopg.Error:
        try:
            return urlsplit(url).password
        except ValueError:
            return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
