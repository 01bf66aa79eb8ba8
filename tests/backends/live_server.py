"""A real ``gatekit serve`` process on a free loopback port, for tests and benches.

API keys (one per role) are created in the server's store before it starts,
as ``gatekit keys create`` does; ``stop()`` ends the process it started (and only
that one). Its output goes to ``server.log`` in the data directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gatekit import HttpBackend, Settings
from gatekit.api_keys import Role, create_key
from gatekit.store import Store, open_store

START_TIMEOUT = 60.0  # seconds for the process to answer /readyz


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    data_dir: Path
    database_url: str | None
    keys: dict[Role, str]
    process: subprocess.Popen[bytes]
    log: Path
    backends: list[HttpBackend] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        data_dir: Path,
        policy: Path | None = None,
        *,
        database_url: str | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> LiveServer:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        settings = Settings(data_dir=data_dir, database_url=database_url)
        store = open_store(settings)
        try:
            keys = {role: create_key(store, name=f"{role.value}-1", role=role)[0] for role in Role}
        finally:
            store.close()
        port = free_port()
        command = [sys.executable, "-m", "gatekit.cli", "serve", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers)]
        command += ["--data-dir", str(data_dir)]
        if policy is not None:
            command += ["--policy", str(policy)]
        if database_url is not None:
            command += ["--database-url", database_url]
        log = data_dir / "server.log"
        with os.fdopen(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as output:
            process = subprocess.Popen(
                command,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "GATEKIT_WRITER_ID": "live-server", **(env or {})},
            )
        server = cls(f"http://127.0.0.1:{port}", data_dir, database_url, keys, process, log)
        try:
            server._wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gatekit serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gatekit serve not ready in {START_TIMEOUT} s:\n{self.log.read_text()}")

    def backend(self, role: Role = Role.AGENT, **options: Any) -> HttpBackend:
        """An HttpBackend with this role's key; closed at ``stop()``."""
        backend = HttpBackend(self.url, api_key=self.keys[role], **options)
        self.backends.append(backend)
        return backend

    def store(self) -> Store:
        """Another connection to the server's store, to look at what it recorded."""
        return open_store(Settings(data_dir=self.data_dir, database_url=self.database_url))

    def stop(self) -> None:
        for backend in self.backends:
            backend.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
