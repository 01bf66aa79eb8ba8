"""``gatekit keys agent …`` and ``gatekit delegation …``: agent keys, and the
delegation tokens that let one agent act for another."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Annotated

import typer

from gatekit._models import DataSensitivity, OperationClass, RiskLevel
from gatekit.cli._common import FAILURE, App, DatabaseUrl, DataDir, console, fail, settings
from gatekit.delegation import (
    AgentKey,
    DelegationChain,
    DelegationConfig,
    DelegationRefused,
    DelegationScope,
    DelegationVerifier,
    issue_delegation,
    register_key,
    revoke_key,
)
from gatekit.delegation.tokens import DEFAULT_TTL
from gatekit.store import Store, open_store

keys_app = App(
    help="API keys of the server, and the key pairs of agents that delegate.",
    no_args_is_help=True,
)
agent_keys = App(help="Agent key pairs (Ed25519).", no_args_is_help=True)
keys_app.add_typer(agent_keys, name="agent")
delegation_app = App(help="Issue, inspect, verify and revoke delegations.", no_args_is_help=True)

KeyDir = Annotated[Path, typer.Option("--dir", help="Where to write the key pair.")]


def _store(data_dir: Path | None, database_url: str | None) -> Store:
    return open_store(settings(data_dir, database_url))


@agent_keys.command("create")
def create_agent_key(
    identity: Annotated[str, typer.Option("--id", help="The agent's identity.")],
    directory: KeyDir = Path(".gatekit/agent-keys"),
    register: Annotated[
        bool, typer.Option("--register", help="Also register the public key in the store.")
    ] = False,
    root: Annotated[
        bool, typer.Option("--root", help="Register it as a trusted root (implies --register).")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key pair (private file 0600) and print its key id."""
    key = AgentKey.generate(identity)
    path = key.save(directory)
    if register or root:
        store = _store(data_dir, database_url)
        try:
            register_key(store, key, root=root)
        finally:
            store.close()
    typer.echo(key.key_id)
    console().print(f"private key: {path}", markup=False, style="dim")


def _scope(
    max_risk: str | None,
    operations: list[str],
    sensitivities: list[str],
    tools: list[str],
    resources: list[str],
    budget: int | None,
) -> DelegationScope:
    return DelegationScope(
        max_risk=RiskLevel(max_risk) if max_risk else None,
        operations=frozenset(OperationClass(o) for o in operations) if operations else None,
        sensitivities=(
            frozenset(DataSensitivity(s) for s in sensitivities) if sensitivities else None
        ),
        tools=tuple(tools) if tools else None,
        resources=tuple(resources) if resources else None,
        budget=budget,
    )


def _read_chain(chain_file: Path | None) -> list[str]:
    if chain_file is None:
        return []
    return [line.strip() for line in chain_file.read_text().splitlines() if line.strip()]


@delegation_app.command("issue")
def issue(
    key_file: Annotated[Path, typer.Option("--key", help="The issuer's private key file.")],
    to: Annotated[str, typer.Option("--to", help="The delegatee's identity.")],
    to_key: Annotated[str, typer.Option("--to-key", help="The delegatee's key id.")],
    chain_file: Annotated[
        Path | None,
        typer.Option("--chain", help="The issuer's own chain (one token a line, root first)."),
    ] = None,
    ttl: Annotated[
        float | None,
        typer.Option(help="Seconds the token is valid (default: an hour, at most the parent's)."),
    ] = None,
    audience: Annotated[str, typer.Option(help="The engine's audience.")] = "gatekit",
    max_risk: Annotated[str | None, typer.Option("--max-risk")] = None,
    operation: Annotated[list[str] | None, typer.Option("--operation")] = None,
    sensitivity: Annotated[list[str] | None, typer.Option("--sensitivity")] = None,
    tool: Annotated[list[str] | None, typer.Option("--tool", help="A tool glob.")] = None,
    resource: Annotated[list[str] | None, typer.Option("--resource", help="A path prefix.")] = None,
    budget: Annotated[int | None, typer.Option(help="Calls allowed under the token.")] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Ask this gatekit server to issue it (POST /v1/delegations); "
            "--key then only proves you hold --chain.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="GATEKIT_API_KEY", help="An agent API key, for --server."),
    ] = None,
) -> None:
    """Print a delegation token; with --chain, the whole new chain (one token a line)."""
    issuer = AgentKey.load(key_file)
    chain = _read_chain(chain_file)
    scope = _scope(max_risk, operation or [], sensitivity or [], tool or [], resource or [], budget)
    if server is not None:
        held = DelegationChain(tuple(chain), issuer, audience)
        typer.echo("\n".join(_ask_server(server, api_key, held, to, to_key, scope, ttl)))
        return
    if chain:
        held = DelegationChain(tuple(chain), issuer, audience)
        child = held.delegate(delegatee=to, delegatee_key_id=to_key, scope=scope, ttl=ttl)
        typer.echo("\n".join(child.tokens))
        return
    token = issue_delegation(
        issuer,
        delegatee=to,
        delegatee_key_id=to_key,
        scope=scope,
        audience=audience,
        ttl=DEFAULT_TTL if ttl is None else ttl,
    )
    typer.echo(token)


def _ask_server(
    server: str,
    api_key: str | None,
    held: DelegationChain,
    to: str,
    to_key: str,
    scope: DelegationScope,
    ttl: float | None,
) -> tuple[str, ...]:
    if not held.tokens:
        fail("--server needs --chain: the server issues children of a chain you hold")
    if not api_key:
        fail("--server needs an agent API key: --api-key or GATEKIT_API_KEY")
    try:
        child = held.request_child(
            server, api_key=api_key, delegatee=to, delegatee_key_id=to_key, scope=scope, ttl=ttl
        )
    except DelegationRefused as refused:
        fail(f"the server issued nothing: {refused.code}", FAILURE)
    return child.tokens


def _segment(part: str) -> object:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


@delegation_app.command("inspect")
def inspect_token(token: Annotated[str, typer.Argument(help="A delegation token.")]) -> None:
    """Print a token's header and claims (NOT verified: see `verify`)."""
    try:
        header, claims, _ = token.strip().split(".")
        shown = {"header": _segment(header), "claims": _segment(claims), "verified": False}
    except ValueError:
        fail("not a compact JWS (header.claims.signature)")
    typer.echo(json.dumps(shown, indent=2, sort_keys=True))


@delegation_app.command("verify")
def verify(
    chain_file: Annotated[Path, typer.Argument(help="The chain: one token a line, root first.")],
    audience: Annotated[str, typer.Option(help="The engine's audience.")] = "gatekit",
    max_depth: Annotated[int, typer.Option("--max-depth")] = 5,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Check a chain against the key registry: signatures, links, expiry, narrowing,
    revocations, a trusted root. Exit 1 with the reason code when it fails."""
    store = _store(data_dir, database_url)
    try:
        config = DelegationConfig(audience=audience, max_depth=max_depth)
        verified = DelegationVerifier(store, config).verify_chain(  # type: ignore[arg-type]
            _read_chain(chain_file), time.time()
        )
    except DelegationRefused as refused:
        fail(f"the chain does not verify: {refused.code}", FAILURE)
    finally:
        store.close()
    typer.echo(f"ok: root {verified.root} → {verified.delegatee}, depth {verified.depth}")


@delegation_app.command("revoke")
def revoke(
    key_id: Annotated[
        str,
        typer.Argument(
            help="The key id to revoke. A key id may start with '-': put it after --, "
            "as in `gatekit delegation revoke -- -rKX…`."
        ),
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an agent key: every token it signed, and every one below, stops working."""
    store = _store(data_dir, database_url)
    try:
        if not revoke_key(store, key_id):
            fail(f"no agent key {key_id}", FAILURE)
    finally:
        store.close()
    typer.echo(f"revoked {key_id}")
