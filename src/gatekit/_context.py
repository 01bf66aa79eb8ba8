"""Context that flows from an agent run to every gated call inside it.

Adapters and the gateway set these; the client reads them when it builds a
request, so a tool deep inside an agent inherits the run and the agent without
any plumbing. contextvars follow asyncio tasks; use ``contextvars.copy_context``
to carry them into threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from gatekit._models import Decision

DecisionListener = Callable[[Decision], None]


@dataclass(frozen=True, slots=True)
class RunContext:
    run_id: str
    agent_id: str | None = None
    session_id: str | None = None


_current_run: ContextVar[RunContext | None] = ContextVar("gatekit_run", default=None)
_listeners: ContextVar[tuple[DecisionListener, ...]] = ContextVar("gatekit_listeners", default=())


def current_run() -> RunContext | None:
    return _current_run.get()


@contextmanager
def run_context(run: RunContext) -> Iterator[RunContext]:
    token = _current_run.set(run)
    try:
        yield run
    finally:
        _current_run.reset(token)


@contextmanager
def listening(listener: DecisionListener) -> Iterator[None]:
    """Call ``listener`` with every decision a client returns in this context."""
    token = _listeners.set((*_listeners.get(), listener))
    try:
        yield
    finally:
        _listeners.reset(token)


def notify(decision: Decision) -> None:
    for listener in _listeners.get():
        listener(decision)
