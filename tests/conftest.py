"""Shared fixtures. ``postgres_server`` starts a real PostgreSQL for the session.

The server comes from Debian's ``postgresql`` package (binaries under
/usr/lib/postgresql/*/bin, or ``GATEKIT_PG_BIN``), runs in a temporary directory
on a free loopback port, and is stopped at the end of the session. Missing
binaries fail the PostgreSQL tests: they are not optional.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gatekit import LocalBackend
from gatekit.audit import AuditLog, KeyRing
from gatekit.store import SqliteStore, Store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def find_pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, if any."""
    explicit = os.environ.get("GATEKIT_PG_BIN")
    candidates = [explicit] if explicit else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster. ``url(db)`` gives a connection URL."""

    bindir: Path
    base: Path
    port: int
    user: str | None  # the OS user running the server when we are root

    @classmethod
    def start(cls, bindir: Path, *, fast: bool = True) -> PostgresServer:
        base = Path(tempfile.mkdtemp(prefix="gatekit-pg-"))
        user = _server_user() if os.geteuid() == 0 else None
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(base, entry.pw_uid, entry.pw_gid)
        server = cls(bindir, base, _free_port(), user)
        try:
            server._boot(fast)
        except BaseException:
            server.stop()
            raise
        return server

    def _boot(self, fast: bool) -> None:
        base = self.base
        self._run(
            "initdb",
            "-D",
            str(base / "data"),
            "-U",
            "gatekit",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {base}"
        if fast:  # tests need isolation, not durability across power loss
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(base / "data"),
            "-l",
            str(base / "log"),
            "-w",
            "-o",
            options,
            "start",
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://gatekit@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = f"gk_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, cwd=self.base, timeout=120)
        if done.returncode != 0:
            log = self.base / "log"
            detail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip()}\n{detail}"
            )


def _server_user() -> str:
    """PostgreSQL refuses to run as root; use its own account, or nobody."""
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_pg_bin()
    if bindir is None:
        pytest.fail(
            "PostgreSQL server binaries (initdb, pg_ctl) not found under "
            "/usr/lib/postgresql/*/bin or on PATH: install Debian's 'postgresql' package "
            "(apt-get install postgresql) or set GATEKIT_PG_BIN"
        )
    server = PostgresServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


# -- one suite, two stores ------------------------------------------------------


@dataclass
class Database:
    """Where a test's state lives; ``open()`` gives another connection to it, like
    another process or replica would have."""

    kind: str
    data_dir: Path
    url: str | None = None
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        store: Store
        if self.url is not None:
            from gatekit.store.postgres import PostgresStore

            store = PostgresStore(self.url, max_size=4)
        else:
            store = SqliteStore.in_directory(self.data_dir)
        self.opened.append(store)
        return store

    @property
    def env(self) -> dict[str, str]:
        """GATEKIT_* variables pointing a subprocess at this database."""
        env = {"GATEKIT_DATA_DIR": str(self.data_dir)}
        if self.url is not None:
            env["GATEKIT_DATABASE_URL"] = self.url
        return env

    @property
    def cli_options(self) -> list[str]:
        options = ["--data-dir", str(self.data_dir)]
        return [*options, "--database-url", self.url] if self.url else options

    def close_all(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    database = Database(request.param, tmp_path / "gatekit-data", url)
    try:
        yield database
    finally:
        database.close_all()


class Clock:
    """A clock tests can move."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_backend(db: Database) -> Callable[..., LocalBackend]:
    """Engines on new connections to ``db``, signing with the data dir's keys."""
    opened: list[LocalBackend] = []

    def make(*, writer_id: str = "test-writer", **options: Any) -> LocalBackend:
        store = db.open()
        audit = AuditLog(
            store,
            writer_id=writer_id,
            signer=KeyRing(db.data_dir / "keys").signer(),
            checkpoint_every=options.pop("checkpoint_every", 1000),
        )
        backend = LocalBackend(store=store, audit=audit, **options)
        opened.append(backend)
        return backend

    return make


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    """Run a test once through Client and once through AsyncClient (see tests/gates.py)."""
    return str(request.param)
