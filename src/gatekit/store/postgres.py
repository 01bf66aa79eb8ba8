"""PostgreSQL: shared state for several gatekit processes or server replicas.

Connections come from a psycopg pool. Races are settled by the database: unique
constraints for idempotency keys, ``SELECT … FOR UPDATE`` for compare-and-set
updates and for each writer's audit chain head.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gatekit._exceptions import BackendError, ConfigurationError
from gatekit.store._migrations import migrate
from gatekit.store._sql import SqlStore

try:
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "the PostgreSQL store needs psycopg: pip install 'gatekit-core[postgres]'"
    ) from exc

_MIGRATION_LOCK = 0x6761_7465  # any constant shared by every gatekit process


class PostgresStore(SqlStore):
    placeholder = "%s"
    lock_rows = " FOR UPDATE"
    lock_key = "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))"

    def __init__(
        self, url: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 10.0
    ) -> None:
        if not url.startswith(("postgresql://", "postgres://")):
            raise ConfigurationError("database_url must be a postgresql:// URL")
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url, min_size=min_size, max_size=max_size, timeout=timeout, open=False
        )
        try:
            self._pool.open(wait=True, timeout=timeout)
        except PoolTimeout as exc:
            self._pool.close()
            raise BackendError(f"cannot connect to PostgreSQL within {timeout} s") from exc
        try:
            with self._write() as cur:
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                migrate(cur, self.placeholder)
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
