"""``gatekit keys agent create`` and ``gatekit delegation issue|inspect|verify|revoke``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from gatekit.cli import app
from tests.delegation.served import open_route, serving
from tests.delegation.world import segments


def _run(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_create_issue_delegate_verify_and_revoke(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "state")]
    keys = str(tmp_path / "keys")
    root = _run("keys", "agent", "create", "--id", "root", "--dir", keys, "--root", *data)
    orch = _run("keys", "agent", "create", "--id", "orch", "--dir", keys, "--register", *data)
    worker = _run("keys", "agent", "create", "--id", "w", "--dir", keys, "--register", *data)
    root_id, orch_id, worker_id = (out.splitlines()[0] for out in (root, orch, worker))
    assert (tmp_path / "keys" / f"{root_id}.key").stat().st_mode & 0o777 == 0o600

    first = _run(
        "delegation",
        "issue",
        "--key",
        f"{keys}/{root_id}.key",
        "--to",
        "orch",
        "--to-key",
        orch_id,
        "--tool",
        "fs.*",
        "--resource",
        "/data",
        "--max-risk",
        "medium",
    )
    (tmp_path / "orch.chain").write_text(first)
    chain = _run(
        "delegation",
        "issue",
        "--key",
        f"{keys}/{orch_id}.key",
        "--to",
        "w",
        "--to-key",
        worker_id,
        "--chain",
        str(tmp_path / "orch.chain"),
        "--tool",
        "fs.read",
        "--resource",
        "/data/a",
        "--max-risk",
        "low",
        "--ttl",
        "600",
    )
    (tmp_path / "w.chain").write_text(chain)
    assert len(chain.split()) == 2

    shown = json.loads(_run("delegation", "inspect", chain.split()[1]))
    assert shown["verified"] is False
    assert shown["claims"]["scope"] == {
        "max_risk": "low",
        "resources": ["/data/a"],
        "tools": ["fs.read"],
    }

    out = _run("delegation", "verify", str(tmp_path / "w.chain"), *data)
    assert out.startswith("ok: root root → w, depth 2")

    # After "--": a key id (base64url) may start with "-", which would read as an option.
    _run("delegation", "revoke", *data, "--", orch_id)
    refused = CliRunner().invoke(app, ["delegation", "verify", str(tmp_path / "w.chain"), *data])
    assert refused.exit_code == 1
    assert "ancestor_revoked" in refused.output


def test_a_widening_chain_does_not_verify(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "state")]
    keys = str(tmp_path / "keys")
    root_id = _run("keys", "agent", "create", "--id", "r", "--dir", keys, "--root", *data).split()[
        0
    ]
    mid_id = _run(
        "keys", "agent", "create", "--id", "m", "--dir", keys, "--register", *data
    ).split()[0]
    first = _run(
        "delegation",
        "issue",
        "--key",
        f"{keys}/{root_id}.key",
        "--to",
        "m",
        "--to-key",
        mid_id,
        "--tool",
        "fs.read",
    )
    (tmp_path / "c").write_text(first)
    wider = _run(
        "delegation",
        "issue",
        "--key",
        f"{keys}/{mid_id}.key",
        "--to",
        "m",
        "--to-key",
        mid_id,
        "--chain",
        str(tmp_path / "c"),
        "--ttl",
        "60",
    )
    (tmp_path / "c2").write_text(wider)
    refused = CliRunner().invoke(app, ["delegation", "verify", str(tmp_path / "c2"), *data])
    assert refused.exit_code == 1
    assert "scope_widened.tools" in refused.output


def test_issue_under_a_chain_lives_at_most_what_the_parent_has_left(tmp_path: Path) -> None:
    keys = str(tmp_path / "keys")
    root_id = _run("keys", "agent", "create", "--id", "r", "--dir", keys).split()[0]
    mid_id = _run("keys", "agent", "create", "--id", "m", "--dir", keys).split()[0]
    first = _run(
        "delegation", "issue", "--key", f"{keys}/{root_id}.key", "--to", "m", "--to-key", mid_id,
        "--ttl", "900",
    )  # fmt: skip
    (tmp_path / "c").write_text(first)
    child = ["delegation", "issue", "--key", f"{keys}/{mid_id}.key", "--to", "w"]
    child += ["--to-key", mid_id, "--chain", str(tmp_path / "c")]
    chain = _run(*child).split()
    assert segments(chain[1])[1]["exp"] == segments(chain[0])[1]["exp"]

    too_long = CliRunner().invoke(app, [*child, "--ttl", "3600"])
    assert too_long.exit_code == 2
    assert "only" in too_long.output and "s left" in too_long.output


def test_issue_through_a_server(tmp_path: Path) -> None:
    with open_route(tmp_path) as route, serving(route.client.app) as url:
        key_file = route.orchestrator.save(tmp_path / "keys")
        parent = route.parent()
        chain_file = tmp_path / "orch.chain"
        chain_file.write_text("\n".join(parent.tokens))
        ask = ["delegation", "issue", "--key", str(key_file), "--chain", str(chain_file)]
        ask += ["--to", "worker", "--to-key", route.worker.key_id, "--server", url]
        ask += ["--max-risk", "low", "--operation", "read", "--sensitivity", "internal"]
        ask += ["--resource", "/data/a"]

        chain = _run(*ask, "--tool", "fs.read", "--api-key", route.api_key).split()
        assert chain[:1] == list(parent.tokens) and len(chain) == 2
        claims = segments(chain[1])[1]
        assert claims["for"] == "orchestrator" and claims["sub"] == "worker"
        assert len(route.events("delegation_issued")) == 1

        wider = CliRunner().invoke(
            app, [*ask, "--tool", "net.*"], env={"GATEKIT_API_KEY": route.api_key}
        )
        assert wider.exit_code == 1
        assert "the server issued nothing: scope_widened.tools" in wider.output

        no_key = CliRunner().invoke(app, [*ask, "--tool", "fs.read"], env={"GATEKIT_API_KEY": ""})
        assert no_key.exit_code == 2
        assert "--api-key" in no_key.output


def test_a_key_id_that_starts_with_a_dash_is_revoked_after_double_dash(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["delegation", "revoke", "--data-dir", str(tmp_path / "state"), "--", "-rKX41a"]
    )
    assert result.exit_code == 1  # looked up (and not found), not a usage error
    assert "no agent key -rKX41a" in result.output
