"""Durable state behind the embedded engine: decisions, approvals, idempotency keys,
and the audit log.

``Store`` is the one interface. ``SqliteStore`` is the default (a file under the
data directory); ``PostgresStore`` serves several processes or server replicas;
``MemoryStore`` keeps state in the process, for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatekit._exceptions import ConfigurationError
from gatekit.store._base import Store, reuse_for_same_action
from gatekit.store.memory import MemoryStore
from gatekit.store.sqlite import SqliteStore, make_private_directory

if TYPE_CHECKING:
    from gatekit._settings import Settings

__all__ = ["MemoryStore", "SqliteStore", "Store", "open_store", "reuse_for_same_action"]


def open_store(settings: Settings) -> Store:
    """The store the settings ask for: PostgreSQL if ``database_url`` is set, else SQLite.

    Waits are bounded under ``decision_timeout``: a session that holds a lock too
    long makes decisions fail (closed), never hang.
    """
    lock_wait, statement_time = _time_limits(settings.decision_timeout)
    if settings.database_url:
        try:
            from gatekit.store.postgres import PostgresStore  # psycopg is an optional extra
        except ImportError as exc:
            raise ConfigurationError(f"database_url is set, but {exc}") from exc
        return PostgresStore(
            settings.database_url, lock_timeout=lock_wait, statement_timeout=statement_time
        )
    _prepare_data_dir(settings)
    return SqliteStore.in_directory(
        settings.data_dir, busy_timeout=lock_wait, synchronous=settings.sqlite_synchronous
    )


def _time_limits(decision_timeout: float) -> tuple[float, float]:
    """(lock wait, statement time), in seconds. Both end before the caller's deadline,
    so the store's own error says what went wrong; the lock wait ends first, so a
    held lock is reported as one rather than as a slow statement."""
    return decision_timeout * 0.75, decision_timeout * 0.9


def _prepare_data_dir(settings: Settings) -> None:
    try:
        make_private_directory(settings.data_dir)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigurationError(
            f"cannot use {settings.data_dir} as the gatekit data directory "
            f"(data_dir / GATEKIT_DATA_DIR): {reason}"
        ) from exc
