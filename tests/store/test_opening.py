"""Opening a store: private files, clear one-line errors for a corrupt database, an
unusable data directory or an unreachable PostgreSQL."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from gatekit import BackendError, Client, ConfigurationError, Settings
from gatekit.store import SqliteStore, open_store

if TYPE_CHECKING:
    from tests.conftest import PostgresServer


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The common 022 umask, under which files would be world-readable by default."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _decide_once(data_dir: Path) -> None:
    with Client(data_dir=data_dir, agent_id="agent-1") as client:
        client.decide(tool="read", risk_level="low")


# -- a corrupt database -----------------------------------------------------------


def test_a_database_of_random_bytes_is_a_one_line_backend_error(tmp_path):
    db = tmp_path / "gatekit.db"
    db.write_bytes(os.urandom(8192))
    with pytest.raises(BackendError) as caught:
        SqliteStore(db)
    message = str(caught.value)
    assert message.startswith(f"cannot open the gatekit database {db}: ")
    assert "\n" not in message


def test_a_truncated_database_is_a_backend_error_naming_the_file(tmp_path):
    data_dir = tmp_path / "data"
    _decide_once(data_dir)
    db = data_dir / "gatekit.db"
    db.write_bytes(db.read_bytes()[:100])  # the header survives, the pages do not
    with pytest.raises(BackendError, match="cannot open the gatekit database") as caught:
        Client(data_dir=data_dir, agent_id="agent-1")
    assert str(db) in str(caught.value)


def test_the_cli_reports_a_corrupt_database_without_a_traceback(tmp_path):
    (tmp_path / "gatekit.db").write_bytes(b"not a database, just some text " * 100)
    done = subprocess.run(
        [sys.executable, "-m", "gatekit.cli", "approvals", "list", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "500"},
        timeout=60,
    )
    assert done.returncode == 1  # a failure, not a usage or configuration error
    assert "Traceback" not in done.stderr
    assert f"cannot open the gatekit database {tmp_path / 'gatekit.db'}" in done.stderr


# -- private files ----------------------------------------------------------------


def test_a_new_data_dir_and_database_files_are_private(tmp_path, usual_umask):
    data_dir = tmp_path / "new" / "data"
    store = SqliteStore.in_directory(data_dir)
    try:
        _decide_once(data_dir)  # writes; the open store keeps -wal and -shm in place
        files = {p.name: _mode(p) for p in data_dir.iterdir() if p.is_file()}
    finally:
        store.close()
    assert _mode(data_dir) == 0o700
    assert {"gatekit.db", "gatekit.db-wal", "gatekit.db-shm", "gatekit.db.setup-lock"} <= set(files)
    assert set(files.values()) == {0o600}, files


def test_an_existing_data_dir_keeps_its_mode(tmp_path, usual_umask):
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o750)
    os.chmod(data_dir, 0o750)
    SqliteStore.in_directory(data_dir).close()
    assert _mode(data_dir) == 0o750
    assert _mode(data_dir / "gatekit.db") == 0o600


def test_an_existing_database_keeps_its_mode(tmp_path, usual_umask):
    SqliteStore(tmp_path / "gatekit.db").close()
    os.chmod(tmp_path / "gatekit.db", 0o640)  # the owner's choice, e.g. for a backup group
    SqliteStore(tmp_path / "gatekit.db").close()
    assert _mode(tmp_path / "gatekit.db") == 0o640


# -- an unusable data directory -------------------------------------------------------


def _refused_data_dir(data_dir: Path) -> str:
    with pytest.raises(ConfigurationError) as caught:
        open_store(Settings(data_dir=data_dir))
    return str(caught.value)


def test_a_data_dir_under_a_file_is_a_configuration_error(tmp_path):
    (tmp_path / "plain-file").write_text("")
    data_dir = tmp_path / "plain-file" / "data"
    message = _refused_data_dir(data_dir)
    assert str(data_dir) in message
    assert "GATEKIT_DATA_DIR" in message


def test_a_data_dir_that_is_a_file_is_a_configuration_error(tmp_path):
    (tmp_path / "data").write_text("")
    assert "GATEKIT_DATA_DIR" in _refused_data_dir(tmp_path / "data")


def test_the_client_reports_an_unusable_data_dir(tmp_path):
    (tmp_path / "plain-file").write_text("")
    with pytest.raises(ConfigurationError, match="GATEKIT_DATA_DIR"):
        Client(data_dir=tmp_path / "plain-file" / "data")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_data_dir_is_a_configuration_error(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.chmod(data_dir, 0o500)
    try:
        message = _refused_data_dir(data_dir)
    finally:
        os.chmod(data_dir, 0o700)
    assert str(data_dir) in message
    assert "GATEKIT_DATA_DIR" in message


# -- an unreachable PostgreSQL ------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket closes


_OPEN_AND_REPORT = """
import sys
from gatekit import BackendError
from gatekit.store.postgres import PostgresStore
try:
    PostgresStore(sys.argv[1], timeout=2)
except BackendError as exc:
    print(exc)
"""


def test_an_unreachable_postgres_is_one_clear_error_and_nothing_on_stderr():
    url = f"postgresql://gatekit:s3cret-pw@127.0.0.1:{_closed_port()}/gatekit"
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_REPORT, url], capture_output=True, text=True, timeout=60
    )
    assert done.stderr == ""  # the pool's retries used to log a warning each
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cannot connect to PostgreSQL at 127.0.0.1:")
    assert "/gatekit within 2 s: " in lines[0]
    assert "s3cret-pw" not in done.stdout


@pytest.mark.postgres
def test_a_missing_postgres_database_names_the_reason_not_the_password(
    postgres_server: PostgresServer,
):
    from gatekit.store.postgres import PostgresStore

    url = f"postgresql://gatekit:s3cret-pw@127.0.0.1:{postgres_server.port}/no_such_db"
    with pytest.raises(BackendError) as caught:
        PostgresStore(url, timeout=5)
    message = str(caught.value)
    assert message.startswith(f"cannot connect to PostgreSQL at 127.0.0.1:{postgres_server.port}/")
    assert 'database "no_such_db" does not exist' in message
    assert "s3cret-pw" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
