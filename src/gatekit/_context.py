"""Context that flows from an agent run to every gated call inside it.

Adapters and the gateway set these; the client reads them when it builds a
request, so a tool deep inside an agent inherits the run, the agent and the
run's limits without any plumbing. contextvars follow asyncio tasks (and
``asyncio.to_thread``); wrap a callable with ``propagate`` to carry them into a
thread pool or a plain thread.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from gatekit._models import Check, CheckOutcome, Decision

if TYPE_CHECKING:
    from gatekit.delegation import DelegationChain

DecisionListener = Callable[[Decision], None]

P = ParamSpec("P")
R = TypeVar("R")


class RunLimits:
    """Budgets of one run, shared by every task and thread of it.

    Each gated call inside the run asks ``admit()`` once, before it is decided;
    attempts count, whatever the decision, so a runaway loop of refused calls
    is stopped too. The duration is measured from construction. A nested run's
    limits also spend the enclosing run's (``parent``), so a sub-run cannot
    escape its caller's budget.
    """

    def __init__(
        self,
        max_tool_calls: int | None = None,
        max_duration: float | None = None,
        *,
        parent: RunLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_tool_calls = max_tool_calls
        self.max_duration = max_duration
        self.parent = parent
        self._clock = clock
        self._deadline = None if max_duration is None else clock() + max_duration
        self._lock = threading.Lock()
        self._calls = 0

    def admit(self) -> str | None:
        """Count one call; return why it must not run, or None when it may."""
        with self._lock:
            refusal = self._refusal()
            if refusal is None:
                self._calls += 1
        if refusal is None and self.parent is not None:
            return self.parent.admit()
        return refusal

    def peek(self) -> str | None:
        """Why a call must not run now, without counting one (a dry run)."""
        with self._lock:
            refusal = self._refusal()
        if refusal is None and self.parent is not None:
            return self.parent.peek()
        return refusal

    def _refusal(self) -> str | None:
        if self._deadline is not None and self._clock() >= self._deadline:
            return f"run limit: {self.max_duration:g} s elapsed"
        if self.max_tool_calls is not None and self._calls >= self.max_tool_calls:
            return f"run limit: {self.max_tool_calls} tool calls"
        return None


@dataclass(frozen=True, slots=True)
class RunContext:
    run_id: str
    agent_id: str | None = None
    session_id: str | None = None
    limits: RunLimits | None = None
    delegation: DelegationChain | None = None  # signs every request made in the run


_current_run: ContextVar[RunContext | None] = ContextVar("gatekit_run", default=None)
_listeners: ContextVar[tuple[DecisionListener, ...]] = ContextVar("gatekit_listeners", default=())
_limits_paused: ContextVar[bool] = ContextVar("gatekit_run_limits_paused", default=False)


def current_run() -> RunContext | None:
    return _current_run.get()


@contextmanager
def run_context(run: RunContext) -> Iterator[RunContext]:
    token = _current_run.set(run)
    try:
        yield run
    finally:
        _current_run.reset(token)


def run_limit_checks() -> list[Check]:
    """Spend one call of the current run's limits: a blocking check once they are spent.

    The client adds it to the request, so the engine records the refusal as a
    blocked decision like any other, and the tool does not run.
    """
    run = _current_run.get()
    if run is None or run.limits is None:
        return []
    refusal = run.limits.peek() if _limits_paused.get() else run.limits.admit()
    if refusal is None:
        return []
    return [Check(name="run.limit", outcome=CheckOutcome.BLOCK, detail=refusal)]


@contextmanager
def run_limits_paused() -> Iterator[None]:
    """Requests prepared inside look at the run's limits without spending them."""
    token = _limits_paused.set(True)
    try:
        yield
    finally:
        _limits_paused.reset(token)


def propagate(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn``, bound to the current context: run, agent, limits and listeners.

    For threads, which start with an empty context:
    ``pool.submit(propagate(tool_call), …)``. Each call runs in its own copy of
    the context captured now, so the wrapped callable may run in many threads at once.
    """
    captured = copy_context()

    @functools.wraps(fn)
    def in_context(*args: P.args, **kwargs: P.kwargs) -> R:
        return captured.copy().run(fn, *args, **kwargs)

    return in_context


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
