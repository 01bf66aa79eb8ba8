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
from gatekit.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from gatekit._settings import Settings

__all__ = ["MemoryStore", "SqliteStore", "Store", "open_store", "reuse_for_same_action"]


def open_store(settings: Settings) -> Store:
    """The store the settings ask for: PostgreSQL if ``database_url`` is set, else SQLite."""
    if settings.database_url:
        try:
            from gatekit.store.postgres import PostgresStore  # psycopg is an optional extra
        except ImportError as exc:
            raise ConfigurationError(f"database_url is set, but {exc}") from exc
        return PostgresStore(settings.database_url)
    return SqliteStore.in_directory(settings.data_dir, synchronous=settings.sqlite_synchronous)
