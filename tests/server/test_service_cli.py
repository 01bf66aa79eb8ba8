"""`gatekit keys create | list | revoke`: the keys a server checks, made where it keeps
its state; the key alone on stdout, so a script can capture it."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from gatekit import Settings
from gatekit.api_keys import authenticate
from gatekit.cli import app
from gatekit.store import open_store

runner = CliRunner()
WIDE = {"COLUMNS": "200"}


def test_create_list_and_revoke_a_key(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path)]
    made = runner.invoke(app, ["keys", "create", "--name", "alice", "--role", "reviewer", *where])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip()
    assert key.startswith("gk_") and "\n" not in key
    assert "not shown again" in made.stderr

    store = open_store(Settings(data_dir=tmp_path))
    try:
        holder = authenticate(store, key)
        assert holder is not None and (holder.name, holder.role.value) == ("alice", "reviewer")
    finally:
        store.close()

    listed = runner.invoke(app, ["keys", "list", *where], env=WIDE)
    assert holder.key_id in listed.stdout and "alice" in listed.stdout
    assert key not in listed.stdout  # never the key itself

    revoked = runner.invoke(app, ["keys", "revoke", holder.key_id, *where])
    assert revoked.exit_code == 0 and f"revoked {holder.key_id}" in revoked.stdout
    store = open_store(Settings(data_dir=tmp_path))
    try:
        assert authenticate(store, key) is None
    finally:
        store.close()
    unknown = runner.invoke(app, ["keys", "revoke", "0000000000000000", *where])
    assert unknown.exit_code == 1 and "no API key" in unknown.stderr


def test_a_key_needs_a_visible_name_and_a_known_role(tmp_path: Path) -> None:
    where = ["--data-dir", str(tmp_path)]
    hidden = runner.invoke(app, ["keys", "create", "--name", "al\u200bice", *where])
    assert hidden.exit_code == 2 and "invisible" in hidden.stderr
    role = runner.invoke(app, ["keys", "create", "--name", "bob", "--role", "boss", *where])
    assert role.exit_code == 2
