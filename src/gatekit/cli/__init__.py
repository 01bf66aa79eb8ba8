"""The ``gatekit`` command. Sub-commands live in their own modules and register here.

Commands built on gatekit (``gatekit-mcp``) use the same conventions through
``App`` (one-line errors, ``--debug``, ``--version``), ``fail`` and ``short_id``.
"""

from __future__ import annotations

import typer

from gatekit._version import __version__
from gatekit.cli import approvals, audit, server
from gatekit.cli._common import App, fail, short_id
from gatekit.cli.delegation import delegation_app, keys_app
from gatekit.cli.demo import demo
from gatekit.cli.policy import policy_app

__all__ = ["App", "app", "fail", "main", "short_id"]

app = App(
    name="gatekit",
    help="Govern what AI agents do: decisions, reviews and audit for every tool call.",
    no_args_is_help=True,
    version=f"gatekit {__version__}",
)
app.command()(demo)
app.add_typer(policy_app, name="policy")
app.add_typer(approvals.app, name="approvals")
app.add_typer(audit.app, name="audit")
keys_app.command("create")(server.create)
keys_app.command("list")(server.list_command)
keys_app.command("revoke")(server.revoke)
app.add_typer(keys_app, name="keys")
app.command()(server.serve)
app.add_typer(delegation_app, name="delegation")


@app.command()
def version() -> None:
    """Print the installed gatekit version."""
    typer.echo(__version__)


def main() -> None:
    app()
