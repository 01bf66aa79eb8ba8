"""Apply the packaged SQL migrations in order, once; refuse a newer database."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from gatekit._exceptions import ConfigurationError

_NAME = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("gatekit.store.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], tuple(_statements(entry.read_text()))))
    return sorted(found, key=lambda m: m.version)


def latest_version() -> int:
    return max((m.version for m in migrations()), default=0)


def _statements(script: str) -> list[str]:
    # Our scripts hold no semicolons inside literals, so splitting on them is exact.
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]


def migrate(cursor: Any, placeholder: str = "?") -> int:
    """Bring the schema up to date inside the caller's (locked) transaction.

    Returns the resulting version. Raises ConfigurationError when the database
    was written by a newer gatekit, which this version must not touch.
    """
    cursor.execute(
        "CREATE TABLE IF NOT EXISTS gatekit_schema ("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    cursor.execute("SELECT MAX(version) FROM gatekit_schema")
    current = cursor.fetchone()[0] or 0
    known = migrations()
    newest = max((m.version for m in known), default=0)
    if current > newest:
        raise ConfigurationError(
            f"the gatekit database is at schema version {current}, newer than this gatekit "
            f"supports (up to {newest}); upgrade gatekit-core or use another database"
        )
    insert = "INSERT INTO gatekit_schema (version, name, applied_at) VALUES (?, ?, ?)"
    for migration in known:
        if migration.version <= current:
            continue
        for statement in migration.statements:
            cursor.execute(statement)
        cursor.execute(
            insert.replace("?", placeholder),
            (migration.version, migration.name, datetime.now(UTC).isoformat()),
        )
    return max(current, newest)
