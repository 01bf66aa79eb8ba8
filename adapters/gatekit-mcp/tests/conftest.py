"""Shared fixtures. ``everything_server`` installs and runs the MCP reference
server ``@modelcontextprotocol/server-everything`` (pinned, with its whole
dependency tree, by ``tests/npm/package-lock.json``).

It is installed with ``npm ci`` into ``.test-cache/npm`` at the top of the
repository (ignored by git) the first time a test needs it. Node.js and npm come
from Debian's packages (``apt-get install nodejs npm``) when ``node`` is missing.
Only when npm itself cannot be installed are the tests that need it skipped,
saying why; any other failure (npm ci failing, say) fails them.
"""

from __future__ import annotations

import fcntl
import filecmp
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))  # gk_mcp_test_policy, for in-process tests

NPM_PINS = TESTS / "npm"
NPM_CACHE = TESTS.parents[2] / ".test-cache" / "npm"
EVERYTHING = "node_modules/@modelcontextprotocol/server-everything/dist/index.js"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's engine state (decisions, reviews, audit) in its own directory, for
    in-process backends and the proxies the test starts alike: reviews are durable
    and found again by key, so tests must not share them."""
    data_dir = tmp_path / "gatekit-data"
    monkeypatch.setenv("GATEKIT_DATA_DIR", str(data_dir))
    return data_dir


def _as_root(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return command
    return ["sudo", "-n", *command]  # never prompts: fails instead


def _install_node() -> str | None:
    """Install Debian's nodejs and npm; why not, if they could not be installed."""
    packages = ["nodejs", "npm"] if shutil.which("node") is None else ["npm"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        try:
            done = subprocess.run(
                _as_root(command), env=env, capture_output=True, text=True, timeout=900
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"{' '.join(command)}: {error}"
        if done.returncode != 0:
            return f"{' '.join(command)} failed: {(done.stderr or done.stdout).strip()[-500:]}"
    return None


def _node_and_npm() -> tuple[str, str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        why = _install_node()
        if why is not None or shutil.which("node") is None or shutil.which("npm") is None:
            pytest.skip(
                f"npm cannot be installed on this machine ({why or 'not found after apt-get'})"
            )
    return str(shutil.which("node")), str(shutil.which("npm"))


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """One installer at a time (the mcp 1.x and 2.x runs may share the cache)."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _installed(cache: Path) -> bool:
    lock = cache / "package-lock.json"
    return (
        (cache / EVERYTHING).is_file()
        and lock.is_file()
        and filecmp.cmp(lock, NPM_PINS / "package-lock.json", shallow=False)
    )


@pytest.fixture(scope="session")
def everything_server() -> list[str]:
    """The command running server-everything over stdio (installed on first use)."""
    node, npm = _node_and_npm()
    with _locked(NPM_CACHE):
        if not _installed(NPM_CACHE):
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(NPM_PINS / name, NPM_CACHE / name)
            command = [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(NPM_CACHE)]
            done = subprocess.run(command, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                pytest.fail(f"npm ci failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return [node, str(NPM_CACHE / EVERYTHING), "stdio"]
