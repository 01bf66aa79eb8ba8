"""The gateway: govern a whole agent run with one call.

    gateway = gatekit.Gateway(client=client, agent_id="support-bot", max_tool_calls=20)
    result = gateway.run(agent.invoke, input={"messages": [...]})
    print(result.summary)

Before the agent starts, the backend must be ready and a run-level decision on
the input (tool ``agent.run``, intent ``run:<agent_id>``) must allow the run.
While it runs, every gated call inside inherits the run id and the agent, and
spends the run's limits; a call past them is blocked by the engine like any
other denial. Afterwards the outcome is reported on the run decision and a
summary of the run's decisions is returned.

Context follows asyncio tasks and ``asyncio.to_thread`` by itself; for a
thread pool or a plain thread, wrap the callable with ``Gateway.propagate``.
"""

from __future__ import annotations

import inspect
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from threading import Lock
from typing import Any, Generic, TypeVar

import anyio
from pydantic_core import to_jsonable_python

from gatekit import _context
from gatekit._client import AsyncClient, Client, default_client
from gatekit._exceptions import BackendError, ConfigurationError, GatekitError
from gatekit._models import (
    Action,
    Decision,
    DecisionRequest,
    OperationClass,
    Outcome,
    RiskLevel,
    Status,
)
from gatekit.adapters import Refused, ToolCallGate
from gatekit.delegation import DelegationChain
from gatekit.delegation.tokens import RUN_TOOL

__all__ = ["Gateway", "RunResult", "RunSummary"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What happened to the gated calls of one run, by final status."""

    allowed: int = 0
    blocked: int = 0
    pending_review: int = 0
    approved: int = 0
    rejected: int = 0
    expired: int = 0
    duration: float = 0.0  # seconds, from the start of the agent to its end

    @property
    def reviewed(self) -> int:
        """Calls that went to a human: still pending, approved, rejected or expired."""
        return self.pending_review + self.approved + self.rejected + self.expired

    @property
    def tool_calls(self) -> int:
        return self.allowed + self.blocked + self.reviewed

    def __str__(self) -> str:
        return (
            f"{self.tool_calls} tool calls: {self.allowed} allowed, {self.blocked} blocked, "
            f"{self.reviewed} reviewed ({self.pending_review} pending, {self.approved} approved, "
            f"{self.rejected} rejected, {self.expired} expired) in {self.duration:.3f} s"
        )


@dataclass(frozen=True, slots=True)
class RunResult(Generic[T]):
    """What ``Gateway.run`` returns: the agent's output and how the run was governed."""

    output: T
    run_id: str
    decision: Decision  # the run-level decision
    summary: RunSummary


class _Tally:
    """The latest status of every decision made inside a run, from any task or thread."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._latest: dict[str, Decision] = {}

    def record(self, decision: Decision) -> None:
        with self._lock:
            self._latest[decision.decision_id] = decision

    def pending(self) -> list[Decision]:
        with self._lock:
            return [d for d in self._latest.values() if d.status is Status.PENDING_REVIEW]

    def summary(self, duration: float) -> RunSummary:
        with self._lock:
            counts = Counter(decision.status.value for decision in self._latest.values())
        return RunSummary(**counts, duration=duration)


@dataclass
class _Run:
    """One governed run, from its run-level request to its summary."""

    run_id: str
    request: DecisionRequest
    tally: _Tally = field(default_factory=_Tally)
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> RunSummary:
        return self.tally.summary(time.monotonic() - self.started)


class Gateway:
    """Runs an agent under one run-level decision, one run context and one set of limits.

    ``client`` may be a ``Client`` or an ``AsyncClient`` (either serves ``run`` and
    ``arun``); it defaults to ``gatekit.default_client()``. ``run_risk_level`` is the
    risk the run decision is asked at: the default policy allows a low-risk run and
    sends any other to review. ``max_tool_calls`` counts every gated call attempted
    in the run; ``max_duration`` (seconds) is measured from the agent's start. Calls
    past a limit are blocked; the agent itself is not interrupted. A run decision
    under review is waited for (up to ``review_timeout``) unless ``wait_for_review``
    is False.

    ``run`` and ``arun`` are thin drivers over I/O-free steps: begin (the run's
    request), authorize (the adapter kit's gate), the run's context, and finish
    (its summary and outcome).
    """

    propagate = staticmethod(_context.propagate)

    def __init__(
        self,
        client: Client | AsyncClient | None = None,
        *,
        agent_id: str,
        max_tool_calls: int | None = None,
        max_duration: float | None = None,
        require_ready: bool = True,
        run_risk_level: RiskLevel | str = RiskLevel.LOW,
        session_id: str | None = None,
        wait_for_review: bool = True,
        review_timeout: float | None = None,
    ) -> None:
        if not agent_id.strip():
            raise ConfigurationError("a gateway needs an agent_id")
        if max_tool_calls is not None and max_tool_calls < 0:
            raise ConfigurationError("max_tool_calls must not be negative")
        if max_duration is not None and max_duration <= 0:
            raise ConfigurationError("max_duration must be positive")
        self.client = client if client is not None else default_client()
        self.agent_id = agent_id
        self.max_tool_calls = max_tool_calls
        self.max_duration = max_duration
        self.require_ready = require_ready
        self.session_id = session_id
        self._gate = ToolCallGate(
            self.client,
            on_review="wait" if wait_for_review else "refuse",
            review_timeout=review_timeout,
        )
        self._run_template = Action(  # validates the fields now, not at the first run
            tool=RUN_TOOL,
            intent_id=f"run:{agent_id}",
            risk_level=run_risk_level,
            operation_class=OperationClass.EXECUTE,
            agent_id=agent_id,
            session_id=session_id,
            metadata={"max_tool_calls": max_tool_calls, "max_duration": max_duration},
        )

    # -- steps (no I/O) ----------------------------------------------------------------

    def _begin(self, input: Any, delegation: DelegationChain | None) -> _Run:
        run_id = f"run_{uuid.uuid4().hex}"
        arguments = {"input": to_jsonable_python(input, fallback=repr)}
        action = self._run_template.model_copy(update={"run_id": run_id, "arguments": arguments})
        request = self._gate.client.prepare(action)
        # Under delegation the run decision is a delegated request like any other
        # (signed by the worker's key, its chain verified before policy), with a
        # proof for a run rather than a tool call. The chain is this run's, else
        # the one ``prepare`` found (an enclosing run's, else the client's).
        chain: DelegationChain | None = delegation or request._delegation_chain
        request._delegation_chain = chain.for_run() if chain is not None else None
        return _Run(run_id, request)

    @staticmethod
    def _check_delegation(delegation: DelegationChain | None) -> None:
        if delegation is not None and delegation.key is None:
            raise ConfigurationError(
                "a run's delegation needs its delegatee's key: pass chain.held_by(key)"
            )

    @contextmanager
    def _inside(self, run: _Run, delegation: DelegationChain | None) -> Iterator[None]:
        """The run's context: identity, limits (nested in any enclosing run's), the
        delegation (or the enclosing run's) and the tally."""
        outer = _context.current_run()
        context = _context.RunContext(
            run_id=run.run_id,
            agent_id=self.agent_id,
            session_id=self.session_id or (outer.session_id if outer else None),
            limits=_context.RunLimits(
                self.max_tool_calls,
                self.max_duration,
                parent=outer.limits if outer else None,
            ),
            delegation=delegation or (outer.delegation if outer else None),
        )
        with _context.run_context(context), _context.listening(run.tally.record):
            yield

    @staticmethod
    def _outcome(error: BaseException | None, summary: RunSummary) -> Outcome:
        if error is None:
            return Outcome(status="success", detail=str(summary))
        return Outcome(status="error", detail=f"{type(error).__name__}; {summary}")

    @staticmethod
    def _not_ready() -> BackendError:
        return BackendError("the decision backend is not ready; the run did not start")

    @staticmethod
    def _returned_coroutine(output: object) -> None:
        if inspect.iscoroutine(output):
            output.close()
            raise TypeError("fn returned a coroutine: use `await gateway.arun(...)`")

    # -- sync driver -------------------------------------------------------------------

    def run(
        self,
        fn: Callable[..., T],
        /,
        *,
        input: Any,
        delegation: DelegationChain | None = None,
        **kwargs: Any,
    ) -> RunResult[T]:
        """Call ``fn(input, **kwargs)`` as a governed run. Raises ``BackendError`` when
        the backend is not ready or cannot decide, and ``Blocked``/``PendingReview``/…
        when the run is refused; ``fn`` does not run then. With ``delegation`` (a chain
        held by its delegatee's key), every gated call inside the run is made under it:
        each request carries the chain and its own proof, the run-level decision
        first (its proof is for a run, held to the chain's ``max_risk``: what the
        run may touch is checked call by call)."""
        if inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__qualname__} is async: use `await gateway.arun(...)`")
        self._check_delegation(delegation)
        client = self._gate.client
        if self.require_ready and not client.ready():
            raise self._not_ready()
        run = self._begin(input, delegation)
        try:
            decision = self._gate.authorize(run.request)
        except Refused as refused:
            raise refused.error from None
        try:
            with self._inside(run, delegation):
                output = fn(input, **kwargs)
            self._returned_coroutine(output)
        except BaseException as error:
            client.report(decision, self._outcome(error, self._settle(run)), quiet=True)
            raise
        summary = self._settle(run)
        client.report(decision, self._outcome(None, summary), quiet=True)
        return RunResult(output=output, run_id=run.run_id, decision=decision, summary=summary)

    def _settle(self, run: _Run) -> RunSummary:
        """The summary, with calls that went to review counted by how the review ended."""
        for decision in run.tally.pending():
            # Unknown to this client's backend (a tool used another one): it stays pending.
            with suppress(GatekitError):
                run.tally.record(self._gate.client.refresh(decision))
        return run.summary()

    # -- async driver ------------------------------------------------------------------

    async def arun(
        self,
        fn: Callable[..., Awaitable[T] | T],
        /,
        *,
        input: Any,
        delegation: DelegationChain | None = None,
        **kwargs: Any,
    ) -> RunResult[T]:
        """``await fn(input, **kwargs)`` as a governed run; see ``run``. A sync ``fn``
        is called directly (it blocks the event loop while it runs)."""
        self._check_delegation(delegation)
        client = self._gate.aclient
        if self.require_ready and not await client.ready():
            raise self._not_ready()
        run = self._begin(input, delegation)
        try:
            decision = await self._gate.aauthorize(run.request)
        except Refused as refused:
            raise refused.error from None
        try:
            with self._inside(run, delegation):
                output = fn(input, **kwargs)
                if inspect.isawaitable(output):
                    output = await output
        except BaseException as error:
            with anyio.CancelScope(shield=True):
                summary = await self._asettle(run)
                await client.report(decision, self._outcome(error, summary), quiet=True)
            raise
        summary = await self._asettle(run)
        await client.report(decision, self._outcome(None, summary), quiet=True)
        return RunResult(output=output, run_id=run.run_id, decision=decision, summary=summary)

    async def _asettle(self, run: _Run) -> RunSummary:
        """See ``_settle``."""
        for decision in run.tally.pending():
            with suppress(GatekitError):
                run.tally.record(await self._gate.aclient.refresh(decision))
        return run.summary()
