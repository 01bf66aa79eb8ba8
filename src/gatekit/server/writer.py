"""Which audit chain a server process writes, when ``GATEKIT_WRITER_ID`` is unset.

Each process of ``gatekit serve`` writes its own chain, so replicas and workers
never queue on one chain head. The id is ``<host>:<port>``, and for the further
workers of ``--workers N`` on that port ``<host>:<port>/1``, ``/2``…: a slot
claimed with an exclusive lock on ``<data_dir>/writers/<id>.lock``, held until
the process ends (the kernel releases it, even after ``kill -9``).

The id is stable across restarts, which is what the audit witness needs: a
restarted server continues its chain, and its first checkpoint closes the
session a crashed predecessor left open (the witness can see that process is
gone). An id made of the pid would leave such a chain open for ever, and start
a new chain at every restart. ``gatekit audit verify`` checks every chain.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from urllib.parse import quote

from gatekit._exceptions import ConfigurationError
from gatekit._settings import Settings

# Set by ``gatekit serve`` for the processes it starts: ``<host>:<port>``.
WRITER_BASE_VARIABLE = "GATEKIT_SERVE_WRITER_BASE"
_MOST_SLOTS = 1024
_held: list[int] = []  # lock file descriptors, open for the life of the process


def writer_base(port: int) -> str:
    return f"{socket.gethostname() or 'local'}:{port}"


def with_writer_id(settings: Settings) -> Settings:
    """``settings`` with this process's own writer id, unless one was configured or
    the process was not started by ``gatekit serve``."""
    base = os.environ.get(WRITER_BASE_VARIABLE)
    if settings.writer_id is not None or not base:
        return settings
    return settings.model_copy(update={"writer_id": claim_writer_id(settings.data_dir, base)})


def claim_writer_id(data_dir: Path, base: str) -> str:
    """The first of ``base``, ``base/1``, ``base/2``… that no live process holds."""
    directory = data_dir / "writers"
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        for slot in range(_MOST_SLOTS):
            writer_id = base if slot == 0 else f"{base}/{slot}"
            if _lock(directory / f"{quote(writer_id, safe='')}.lock"):
                return writer_id
    except OSError as exc:
        raise ConfigurationError(
            f"cannot claim an audit writer id in {directory}: {exc.strerror or exc}"
        ) from exc
    raise ConfigurationError(f"{_MOST_SLOTS} processes already write audit chains as {base}")


def _lock(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _held.append(fd)
    return True
