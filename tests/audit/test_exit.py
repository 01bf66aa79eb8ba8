"""A script that never closes its client still ends with a signed audit log."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from gatekit.audit import load_public_keys, verify
from gatekit.store import SqliteStore

SCRIPT = textwrap.dedent(
    """
    import gatekit

    client = gatekit.Client(agent_id="script")

    @client.intercept(risk_level="low")
    def read_balance(account: str) -> str:
        return "42"

    read_balance("ACME-001")
    gatekit.intercept(risk_level="low")(lambda: None)()  # the default client too
    # no close(), no `with`: the interpreter just exits
    """
)


def test_the_audit_tail_is_signed_at_interpreter_exit(tmp_path):
    data_dir = tmp_path / "state"
    env = {**os.environ, "GATEKIT_DATA_DIR": str(data_dir)}
    subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, timeout=120)
    store = SqliteStore.in_directory(data_dir)
    try:
        report = verify(store, load_public_keys([data_dir / "keys"]))
    finally:
        store.close()
    assert report.ok
    assert sum(1 for _ in store_records(data_dir)) >= 4  # two decisions, two outcomes
    assert report.unsigned == {}


def store_records(data_dir):
    store = SqliteStore.in_directory(data_dir)
    try:
        yield from list(store.audit_records())
    finally:
        store.close()


def test_a_forked_child_flushes_its_outcomes_on_time(tmp_path):
    # The parent's flusher thread does not exist in a child; the child starts its own.
    script = tmp_path / "fork.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys, time
            from gatekit import Client, LocalBackend
            from gatekit.store import MemoryStore

            backend = LocalBackend(store=MemoryStore())
            client = Client(backend, agent_id="a")
            with client.guard(tool="read", risk_level="low"):
                pass  # the parent's outcome arms its flusher
            pid = os.fork()
            if pid == 0:
                with client.guard(tool="read", risk_level="low") as decision:
                    pass
                time.sleep(1.0)  # no decision follows: only the flusher can commit it
                recorded = backend.store.outcome(decision.decision_id)
                os._exit(0 if recorded is not None else 1)
            _, status = os.waitpid(pid, 0)
            sys.exit(os.waitstatus_to_exitcode(status))
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
