"""What every gatekit command shares: one-line errors, help that shows flags as
flags, short ids, and the options of the commands that touch durable state.

No ``from __future__ import annotations`` here: typer reads the annotations of
the root callback at run time, and that callback's ``--version`` option needs a
real function object, not a name to look up later.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import pydantic
import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from gatekit._exceptions import ConfigurationError, GatekitError, ValidationError
from gatekit._settings import Settings, load_settings
from gatekit.store import Store, open_store
from gatekit.store.sqlite import DB_FILE

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="gatekit data directory (default: GATEKIT_DATA_DIR or .gatekit)"
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="postgresql://… (default: GATEKIT_DATABASE_URL)"),
]

USAGE = 2  # exit code: the command line or the configuration is wrong
FAILURE = 1  # exit code: the command was right but could not be done

_DEBUG = "gatekit.debug"  # key in click's context meta, shared by every sub-command


# -- consoles ------------------------------------------------------------------
# Made per use, not at import: rich fixes the width from COLUMNS when a console is built.


def console() -> Console:
    return Console(highlight=False)


def error_console() -> Console:
    return Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    line = Text.assemble(("warning:", "yellow"), " ", message)
    error_console().print(line, soft_wrap=True)


# -- one-line errors -------------------------------------------------------------


class CommandFailed(Exception):
    """A failure already put in words for the person at the terminal."""

    def __init__(self, message: str, exit_code: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def fail(message: str, code: int = USAGE) -> NoReturn:
    """Stop the command with ``error: message`` on stderr and exit ``code``."""
    raise CommandFailed(message, code)


def describe(error: BaseException) -> str:
    """One line saying what went wrong, for an error message."""
    if isinstance(error, OSError) and error.filename is not None:
        where = str(error.filename) + (f" -> {error.filename2}" if error.filename2 else "")
        return f"{where}: {error.strerror or error}"
    if isinstance(error, pydantic.ValidationError):
        problems = (
            f"{'.'.join(str(part) for part in problem['loc']) or '(top level)'}: {problem['msg']}"
            for problem in error.errors(include_url=False)
        )
        return f"invalid {error.title}: {'; '.join(problems)}"
    return _one_line(str(error)) or type(error).__name__


def _one_line(text: str) -> str:
    """Multi-line messages (a heading, then one problem per line) joined into one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) <= 1:
        return "".join(lines)
    heading, *details = lines
    return f"{heading.rstrip(':')}: {'; '.join(details)}"


def _exit_code(error: BaseException) -> int | None:
    """How the command ends for an error it explains in one line; None: not one of those."""
    if isinstance(error, CommandFailed):
        return error.exit_code
    if isinstance(error, BrokenPipeError):
        return None  # the reader went away (`… | head`); typer exits quietly on its own
    if isinstance(error, ConfigurationError | ValidationError | pydantic.ValidationError):
        return USAGE
    if isinstance(error, GatekitError | OSError):
        return FAILURE
    return None


def _innermost(error: BaseException) -> BaseException:
    # Task groups (anyio, the MCP proxy) wrap the error that stopped them.
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


@contextmanager
def _one_line_errors(ctx: typer.Context) -> Iterator[None]:
    try:
        yield
    except Exception as raised:
        error = _innermost(raised)
        code = _exit_code(error)
        if code is None or ctx.meta.get(_DEBUG, False):
            raise
        message = _one_line(error.message) if isinstance(error, CommandFailed) else describe(error)
        # soft_wrap: the terminal may wrap the line, rich must not cut it into several
        error_console().print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)
        raise typer.Exit(code) from None


# -- commands and groups ---------------------------------------------------------


def _flags_without_type(params: list[Any]) -> list[Any]:
    """typer's rich help labels every flag ``<bool>``, as if it took a value; a flag takes none."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


# Both hook in: a group catches what its callback raises, a command what it raises itself
# (typer runs an app of a single command without any group).


class Command(TyperCommand):
    def get_params(self, ctx: typer.Context) -> list[Any]:  # type: ignore[override]
        return _flags_without_type(super().get_params(ctx))

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        with _one_line_errors(ctx):
            return super().invoke(ctx)


class Group(TyperGroup):
    def get_params(self, ctx: typer.Context) -> list[Any]:  # type: ignore[override]
        return _flags_without_type(super().get_params(ctx))

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        with _one_line_errors(ctx):
            return super().invoke(ctx)


class App(typer.Typer):
    """A typer app whose commands end any gatekit, OS or configuration error with one
    ``error: …`` line on stderr (exit 2 for usage and configuration errors, 1 for other
    failures) and whose help shows flags as flags.

    Give ``version`` (the line ``--version`` prints) on the top-level app only: it also
    adds ``--debug``, which shows the full traceback of an error instead of one line.
    """

    def __init__(self, *, version: str | None = None, **options: Any) -> None:
        options.setdefault("cls", Group)
        options.setdefault("pretty_exceptions_enable", False)  # a plain traceback under --debug
        super().__init__(**options)
        if version is not None:
            self.callback()(_top_level_options(version))

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **options: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(name, cls=cls or Command, **options)


def _top_level_options(version_line: str) -> Callable[..., None]:
    def print_version(value: bool) -> None:
        if value:
            typer.echo(version_line)
            raise typer.Exit()

    def top_level(
        ctx: typer.Context,
        debug: Annotated[
            bool,
            typer.Option("--debug", help="Show the full traceback of an error, not one line."),
        ] = False,
        version: Annotated[
            bool,
            typer.Option(
                "--version", callback=print_version, is_eager=True, help="Print the version."
            ),
        ] = False,
    ) -> None:
        # --version was handled by print_version, before any command started.
        ctx.meta[_DEBUG] = debug

    return top_level


# -- ids -------------------------------------------------------------------------

_KEEP = 4  # characters kept at each end of a shortened id
_ELLIPSES = ("…", "...")


def short_id(value: str) -> str:
    """``dec_3f2a…9c1d`` for ``dec_3f2a`` + 24 more hex digits + ``9c1d``: the kind, then
    the first and last four characters. One id always shortens the same way; short values
    stay whole."""
    kind, underscore, body = value.rpartition("_")
    if len(body) <= 2 * _KEEP + 1:
        return value
    return f"{kind}{underscore}{body[:_KEEP]}…{body[-_KEEP:]}"


def is_short_id(value: str) -> bool:
    return any(ellipsis in value for ellipsis in _ELLIPSES)


def matches_short_id(shortened: str, full: str) -> bool:
    """Whether ``full`` is an id that ``shortened`` (as printed, or typed with ...) stands for."""
    for ellipsis in _ELLIPSES:
        head, found, tail = shortened.partition(ellipsis)
        if found:
            long_enough = len(full) > len(head) + len(tail)
            return long_enough and full.startswith(head) and full.endswith(tail)
    return False


# -- durable state -----------------------------------------------------------------


def settings(data_dir: Path | None, database_url: str | None) -> Settings:
    return load_settings(data_dir=data_dir, database_url=database_url)


def existing_store(config: Settings) -> Store:
    """Open the configured store; refuse to create an empty SQLite file by accident."""
    if not config.database_url and not (config.data_dir / DB_FILE).exists():
        fail(f"no gatekit database at {config.data_dir / DB_FILE}")
    return open_store(config)
