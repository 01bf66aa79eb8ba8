"""Client and AsyncClient: ask for a decision, and run code only when it allows.

``_BaseClient`` holds every step that does no I/O (building requests, DLP,
checking answers, mapping statuses to errors); ``Client`` and ``AsyncClient``
each write only the I/O chain, once sync and once async.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import os
import time
import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from contextvars import copy_context
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import anyio
from pydantic_core import to_jsonable_python

from gatekit import _context
from gatekit._canonical import canonical_json, typed_json
from gatekit._exceptions import (
    ApprovalExpired,
    ApprovalTimeout,
    BackendError,
    Blocked,
    ConfigurationError,
    DecisionError,
    IdempotencyConflict,
    PendingReview,
    RateLimited,
    Rejected,
    ValidationError,
)
from gatekit._models import (
    Action,
    ActionJson,
    Check,
    CheckOutcome,
    Decision,
    DecisionRequest,
    DelegationEnvelope,
    Outcome,
    Status,
)
from gatekit._settings import FailMode, Settings, load_settings
from gatekit.backends import Backend, LocalBackend, ReviewBackend, backend_from_settings
from gatekit.delegation import AgentKey, DelegationChain
from gatekit.dlp import DlpMode, mask_value, scan_value

__all__ = ["AsyncClient", "Client", "default_client", "intercept"]

logger = logging.getLogger("gatekit")

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound="_BaseClient")

# Errors that describe the caller's input or the decision itself, not a broken backend.
_PASS_THROUGH = (DecisionError, ValidationError, IdempotencyConflict)

_SUCCESS = Outcome(status="success")  # immutable: one for every call that returned

_ERROR_FOR_STATUS: dict[Status, type[DecisionError]] = {
    Status.BLOCKED: Blocked,
    Status.PENDING_REVIEW: PendingReview,
    Status.REJECTED: Rejected,
    Status.EXPIRED: ApprovalExpired,
}


def _close_at_exit(owner: object, backend: Backend) -> None:
    """Close ``backend`` when ``owner`` is collected or the interpreter exits, in the
    process that opened it only (a forked child must not sign its parent's chain)."""
    opened_in = os.getpid()

    def close() -> None:
        if os.getpid() == opened_in:
            try:
                backend.close()
            except Exception as exc:  # at exit there is nobody left to raise to
                logger.warning("gatekit: could not close the decision backend: %s", exc)

    weakref.finalize(owner, close)


def _poll_delays() -> Iterator[float]:
    """How long to wait between looks at a pending review: quick first, then 1 s."""
    delay = 0.05
    while True:
        yield delay
        delay = min(delay * 2, 1.0)


class _Waiting:
    """One wait for a reviewer: its deadline, and telling people what it waits for."""

    REMIND_EVERY = 30.0  # seconds between reminders on the log

    def __init__(self, decision: Decision, timeout: float) -> None:
        self.decision = decision
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self._next_word = 0.0

    def tell(self) -> None:
        now = time.monotonic()
        if now < self._next_word:
            return
        self._next_word = now + self.REMIND_EVERY
        approval = self.decision.approval_id
        logger.warning(
            "gatekit: %s is waiting for human review (approval %s, up to %.0f s more); "
            "approve with: gatekit approvals approve %s --reviewer <you>",
            self.decision.tool,
            approval,
            max(0.0, self.deadline - now),
            approval,
        )

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def bounded(self, delay: float) -> float:
        return min(delay, max(0.0, self.deadline - time.monotonic()))


# Sync backend calls that cannot bound their own waits run here, so that the caller
# can stop waiting; a call that never returns keeps its worker, not the caller.
_WORKERS = ThreadPoolExecutor(max_workers=64, thread_name_prefix="gatekit-backend-call")


def _bounds_its_own_waits(fn: Callable[..., Any]) -> bool:
    """The embedded engine's own methods bound every wait they make (the store's busy,
    lock and statement timeouts follow ``decision_timeout``) and run inline; anything
    else, a subclass's override included, runs in a worker the caller can leave."""
    owner = getattr(fn, "__self__", None)
    return owner is not None and _engine_method(type(owner), getattr(fn, "__name__", ""))


def _engine_method(kind: type, name: str) -> bool:
    """Whether ``kind.name`` is ``LocalBackend``'s own (asked on every backend call)."""
    known = _ENGINE_METHODS.get((kind, name))
    if known is None:
        known = _ENGINE_METHODS[kind, name] = issubclass(kind, LocalBackend) and getattr(
            kind, name, None
        ) is getattr(LocalBackend, name, object())
    return known


_ENGINE_METHODS: dict[tuple[type, str], bool] = {}


def _as_backend_error(fn: Callable[..., R], args: tuple[Any, ...]) -> R:
    """``fn(*args)``, with any failure but the caller's own (a denial, bad input) a
    BackendError: no valid decision could be had."""
    try:
        return fn(*args)
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        raise BackendError(f"backend failed: {type(exc).__name__}: {exc}") from exc


def _held_chain(chain: DelegationChain | None, key: AgentKey | None) -> DelegationChain | None:
    if chain is None:
        if key is not None:
            raise ConfigurationError("key= signs requests made under delegation=; pass both")
        return None
    if key is not None:
        chain = chain.held_by(key)
    if chain.key is None:
        raise ConfigurationError("a delegation needs the delegatee's key to sign requests")
    return chain


def _client_blocks(request: DecisionRequest) -> bool:
    return any(check.outcome is CheckOutcome.BLOCK for check in request.client_checks)


_RECEIVERS = ("self", "cls")  # the object a method runs on: not an argument of the action
# Values that are JSON as they are (to_jsonable_python would return them unchanged).
_PLAIN_JSON = frozenset({str, int, bool, type(None)})
# Values that cannot change after the decision: the body may get them uncopied.
_IMMUTABLE = frozenset({str, int, bool, float, bytes, type(None)})


class _CallSpec:
    """How a decorated function's calls become actions (computed once per function)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        tool: str | None,
        capture_arguments: bool,
        fields: dict[str, Any],
    ) -> None:
        self.signature = inspect.signature(fn)
        self.capture_arguments = capture_arguments
        self.template = Action(tool=tool or fn.__name__, **fields)  # validates the fields now
        # Every call's actions differ from the template only in arguments and context.
        self.json = ActionJson(self.template)
        parameters = self.signature.parameters.values()
        # Called with one value for each parameter, in order, a function's arguments
        # need no binding (the common case, and a fast one).
        self._names: tuple[str, ...] | None = (
            tuple(p.name for p in parameters)
            if all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters)
            else None
        )

    def actions(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], context: dict[str, Any]
    ) -> tuple[Action, Action]:
        """The real action (for the digest) and the one to send (values only if
        captured), each made once with the run ``context`` (``_context_fields``)."""
        return self._actions(self._bind(args, kwargs), context)[:2]

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Bound:
        if self._names is not None and not kwargs and len(args) == len(self._names):
            return _Positional(dict(zip(self._names, args, strict=True)))
        bound = self.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound

    def _actions(
        self, bound: _Bound, context: dict[str, Any]
    ) -> tuple[Action, Action, bytes | None]:
        """The real action, the one to send, and the canonical JSON of the sent
        arguments when they are summaries (our own types: nothing to check)."""
        values = {
            name: value if type(value) in _PLAIN_JSON else to_jsonable_python(value, fallback=repr)
            for name, value in bound.arguments.items()
            if name not in _RECEIVERS
        }
        real = self.template.model_copy(update={**context, "arguments": values})
        if self.capture_arguments:
            return real, real, None
        shapes = _summaries(values)
        sent = self.template.model_copy(update={**context, "arguments": shapes})
        # Parameter names are the only text; non-ASCII ones sort by UTF-16 in RFC 8785.
        typed = all(name.isascii() for name in shapes)
        return real, sent, typed_json(shapes) if typed else canonical_json(shapes)

    def call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], context: dict[str, Any]
    ) -> _DecidedCall:
        """The call as it is decided: its actions, and the arguments the body will get."""
        bound = self._bind(args, kwargs)
        real, sent, sent_json = self._actions(bound, context)
        decided = _DecidedCall(self, real, sent, sent_json)
        try:
            # The body gets exactly what was digested, whatever later happens to the
            # caller's objects (e.g. while a reviewer looks at them).
            for name, value in bound.arguments.items():
                if name not in _RECEIVERS and type(value) not in _IMMUTABLE:
                    bound.arguments[name] = copy.deepcopy(value)
        except Exception:  # not copyable (a lock, a socket…): check it again before running
            return decided.with_arguments(args, kwargs, recheck=context)
        return decided.with_arguments(bound.args, bound.kwargs, recheck=None)


class _Positional:
    """A call's arguments given positionally, one per parameter: what
    ``inspect.BoundArguments`` would say of them, without binding."""

    def __init__(self, arguments: dict[str, Any]) -> None:
        self.arguments = arguments

    @property
    def args(self) -> tuple[Any, ...]:
        return tuple(self.arguments.values())

    @property
    def kwargs(self) -> dict[str, Any]:
        return {}


_Bound = inspect.BoundArguments | _Positional


class _DecidedCall:
    def __init__(
        self, spec: _CallSpec, real: Action, sent: Action, sent_arguments_json: bytes | None
    ) -> None:
        self.spec, self.real, self.sent = spec, real, sent
        self.sent_arguments_json = sent_arguments_json
        self.args: tuple[Any, ...] = ()
        self.kwargs: dict[str, Any] = {}
        self._recheck: dict[str, Any] | None = None

    def with_arguments(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], recheck: dict[str, Any] | None
    ) -> _DecidedCall:
        """The arguments the body gets; ``recheck``: the context to check them again
        in before running (they could not be copied)."""
        self.args, self.kwargs, self._recheck = args, kwargs, recheck
        return self

    def arguments(self, decision: Decision) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments to run with; raises Blocked if uncopyable ones changed since."""
        if self._recheck is not None:
            again, _ = self.spec.actions(self.args, self.kwargs, self._recheck)
            if again.digest() != decision.action_digest:
                raise Blocked(decision, "the call's arguments changed after they were decided")
        return self.args, self.kwargs


def _summaries(values: dict[str, Any]) -> dict[str, Any]:
    """Argument names with types and sizes only: nothing of the values leaves the process."""
    summary: dict[str, Any] = {}
    for name, value in values.items():
        shape: dict[str, Any] = {"type": type(value).__name__}
        if isinstance(value, str | list | dict):
            shape["count"] = len(value)
        summary[name] = shape
    return summary


class _BaseClient:
    """``settings`` are any ``gatekit.Settings`` fields (``policy=``, ``data_dir=``,
    ``database_url=``, ``fail_mode=``, …); they override the ``GATEKIT_*`` variables.
    Without a ``backend``, the client runs the embedded engine those settings describe
    and closes it (a final signed audit checkpoint) at interpreter exit.

    ``delegation`` (a ``DelegationChain``) makes every request this client prepares
    carry the chain and a proof signed with ``key`` (default: the chain's own key),
    the leaf delegatee's ``AgentKey``; a run's delegation (``Gateway.run``) wins."""

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        delegation: DelegationChain | None = None,
        key: AgentKey | None = None,
        **settings: Any,
    ) -> None:
        self.settings: Settings = load_settings(**settings)
        self.delegation = _held_chain(delegation, key)
        if backend is not None and not isinstance(backend, Backend):
            raise ConfigurationError(
                f"backend must implement gatekit.backends.Backend, got {type(backend).__name__}"
            )
        if backend is None:
            backend = backend_from_settings(self.settings)
            _close_at_exit(self, backend)
        self.backend: Backend = backend

    # -- building requests -------------------------------------------------------

    def _prepared(
        self, action: Action | DecisionRequest | None, fields: dict[str, Any]
    ) -> DecisionRequest:
        if action is not None and fields:
            raise ValidationError(
                "pass either an Action (or a prepared request) or action fields, not both",
                field="action",
            )
        if isinstance(action, DecisionRequest):
            if not action.prepared_by_client:
                # Otherwise DLP, run limits and the context would be skipped.
                raise ValidationError(
                    "pass an Action, or a request made by client.prepare()", field="action"
                )
            return action
        return self.prepare(action if action is not None else Action(**fields))

    def _context_fields(self, action: Action) -> dict[str, Any]:
        """What the run context (else the client's agent id) fills in on ``action``."""
        run = _context.current_run()
        updates: dict[str, Any] = {}
        if action.agent_id is None:
            updates["agent_id"] = (run and run.agent_id) or self.settings.agent_id
        if action.run_id is None and run is not None:
            updates["run_id"] = run.run_id
        if action.session_id is None and run is not None and run.session_id is not None:
            updates["session_id"] = run.session_id
        return updates

    def _with_context(self, action: Action) -> Action:
        updates = self._context_fields(action)
        return action.model_copy(update=updates) if updates else action

    def prepare(
        self,
        action: Action,
        *,
        sent: Action | None = None,
        checks: Sequence[Check] = (),
        review_key: str | None = None,
    ) -> DecisionRequest:
        """The request for ``action``, as it will be sent: run context filled in,
        run limits spent, DLP applied. The digest binds to the real ``action``;
        ``sent`` (default: ``action``) is what leaves the process. ``checks`` are an
        adapter's own findings (a blocking one blocks, whatever the backend says);
        ``review_key`` names the call across retries (see ``DecisionRequest``).

        ``decide`` and ``guard`` accept the prepared request, so an adapter can
        decide first and guard later without preparing (or counting) twice.
        """
        real = self._with_context(action)
        sent = real if sent is None else self._with_context(sent)
        return self._prepare(real, sent, checks, review_key)

    def _prepare_call(self, call: _DecidedCall) -> DecisionRequest:
        """``prepare`` for a decorated function's call, whose actions carry their
        context already and whose summaries (made here, of types and sizes) hold
        no value to scan."""
        return self._prepare(call.real, call.sent, (), None, call=call)

    def _prepare(
        self,
        real: Action,
        sent: Action,
        checks: Sequence[Check],
        review_key: str | None,
        *,
        call: _DecidedCall | None = None,
    ) -> DecisionRequest:
        # A run past its limits (gateway) blocks here, through the engine, so it is recorded.
        found = [*_context.run_limit_checks(), *checks]
        if self.settings.dlp_mode is not DlpMode.OFF:
            scan_arguments = call is None or call.sent_arguments_json is None
            sent, findings = self._apply_dlp(sent, scan_arguments)
            found += findings
        # The real arguments are serialised once: for the digest, and for the audit
        # record too when they are what is sent.
        real_arguments = canonical_json(real.arguments)
        writer = call.spec.json if call is not None else ActionJson(real)
        digest = writer.digest(real.agent_id, real_arguments)
        sent_json = None  # unless written here, the engine serialises it if it needs it
        if sent is real:
            sent_json = writer.document(real.agent_id, real.run_id, real.session_id, real_arguments)
        elif call is not None and sent is call.sent and call.sent_arguments_json is not None:
            sent_json = writer.document(
                sent.agent_id, sent.run_id, sent.session_id, call.sent_arguments_json
            )
        if review_key is None and not checks:
            # Every value is ours or validated already (the actions, our own checks).
            request = DecisionRequest._trusted(
                action=sent,
                action_digest=digest,
                client_checks=found,
                review_key=None,
                delegation=None,
            )
        else:
            request = DecisionRequest(
                action=sent, action_digest=digest, client_checks=found, review_key=review_key
            )
        return request._client_side(unmasked=real, chain=self._chain(), action_json=sent_json)

    def _chain(self) -> DelegationChain | None:
        """The run's delegation, else the client's."""
        run = _context.current_run()
        return (run and run.delegation) or self.delegation

    @staticmethod
    def _signed(request: DecisionRequest) -> DecisionRequest:
        """``request`` with a fresh proof (a new nonce, now) under the delegation it was
        prepared in, signing exactly the action sent. Signed per send, not at prepare,
        so a prepared request decided again is a new request, never a replay."""
        chain = request._private()["_delegation_chain"]
        if chain is None:
            return request
        envelope: DelegationEnvelope = chain.envelope(request.action)
        return request.model_copy(update={"delegation": envelope})

    def _apply_dlp(self, sent: Action, scan_arguments: bool) -> tuple[Action, list[Check]]:
        mode = self.settings.dlp_mode
        findings = scan_value(sent.metadata, "metadata") if sent.metadata else []
        if scan_arguments:
            findings = scan_value(sent.arguments, "args") + findings
        if not findings:
            return sent, []
        outcome = CheckOutcome.BLOCK if mode is DlpMode.BLOCK else CheckOutcome.WARN
        checks = [
            Check(name=f"dlp.{f.detector}", outcome=outcome, detail=f.category, path=f.path)
            for f in findings
        ]
        if mode is not DlpMode.WARN:
            masked = {
                "arguments": mask_value(sent.arguments) if scan_arguments else sent.arguments,
                "metadata": mask_value(sent.metadata),
            }
            sent = sent.model_copy(update=masked)
        return sent, checks

    def _preview_request(
        self, action: Action | DecisionRequest | None, fields: dict[str, Any]
    ) -> DecisionRequest:
        """Like ``_prepared``, without spending the run's limits (a dry run)."""
        if isinstance(action, DecisionRequest):
            return self._prepared(action, fields)
        with _context.run_limits_paused():
            return self._prepared(action, fields)

    def _reviews(self) -> ReviewBackend:
        backend = self.backend
        if not isinstance(backend, ReviewBackend):
            raise BackendError(f"{type(backend).__name__} does not accept reviews")
        return backend

    # -- judging answers -----------------------------------------------------------

    @staticmethod
    def _checked(request: DecisionRequest, answer: object) -> Decision:
        """The backend's answer, if it is a valid decision about this very request.

        Whatever a backend says, the client enforces what it knows itself: the
        decision is for this action (digest and tool), a high- or critical-risk
        action runs only with a human's approval, an approval has an id, and what
        the client found blocking (DLP, run limits, a changed tool pin) stays so.
        """
        if not isinstance(answer, Decision):
            raise BackendError(f"backend returned {type(answer).__name__}, not a Decision")
        if answer.action_digest != request.action_digest or answer.tool != request.action.tool:
            raise BackendError("backend returned a decision for a different action")
        if not answer.allowed:
            return answer
        if answer.status is Status.ALLOWED and request.action.risk_level.never_auto_allowed:
            raise BackendError(
                f"backend allowed a {request.action.risk_level.value}-risk action without review"
            )
        if answer.status is Status.APPROVED and not answer.approval_id:
            raise BackendError("backend returned an approval without an approval id")
        if _client_blocks(request):
            raise BackendError("backend allowed an action the client's own checks block")
        return answer

    @staticmethod
    def _refreshed(previous: Decision, answer: object) -> Decision:
        """A fresh look at ``previous``; ``consume`` judges it again before anything runs."""
        if not isinstance(answer, Decision) or answer.action_digest != previous.action_digest:
            raise BackendError("backend returned another decision than the one asked for")
        return answer

    def _on_failure(self, request: DecisionRequest, error: BackendError) -> Decision:
        """Fail closed (raise) unless fail_mode='open' was explicitly chosen.

        Even then, what the client itself found blocking (DLP, run limits) stays
        blocking: open mode covers a missing decision, not a known denial.
        """
        # Open mode never runs what needs a human, nor what the client itself blocks.
        known_denial = _client_blocks(request) or request.action.risk_level.never_auto_allowed
        if self.settings.fail_mode is not FailMode.OPEN or known_denial:
            raise error
        logger.warning(
            "gatekit: no valid decision for %s; fail_mode=open lets it run: %s",
            request.action.tool,
            error,
        )
        return Decision(
            decision_id=f"open_{uuid.uuid4().hex}",
            status=Status.ALLOWED,
            reason=f"no valid decision ({error}); allowed because fail_mode='open'",
            tool=request.action.tool,
            action_digest=request.action_digest,
            created_at=datetime.now(UTC),
            checks=[
                *request.client_checks,
                Check(name="backend.failure", outcome=CheckOutcome.WARN, detail=str(error)[:500]),
            ],
            failed_open=True,
        )

    @staticmethod
    def _raise_unless_allowed(decision: Decision) -> None:
        if decision.allowed:
            return
        if decision.status is Status.BLOCKED and decision.retry_after is not None:
            raise RateLimited(decision)
        raise _ERROR_FOR_STATUS[decision.status](decision)

    @staticmethod
    def _needs_consume(decision: Decision) -> bool:
        """Approvals and keyed decisions are single-use; plain allows are not."""
        if decision.failed_open:
            return False
        return decision.status is Status.APPROVED or decision.idempotency_key is not None

    @staticmethod
    def _outcome(error: BaseException | None) -> Outcome:
        return _SUCCESS if error is None else Outcome.of_error(error)

    @staticmethod
    def _coerce_outcome(outcome: Outcome | str) -> Outcome:
        return outcome if isinstance(outcome, Outcome) else Outcome(status=outcome)

    def _timeout(self, timeout: float | None) -> float:
        return self.settings.approval_timeout if timeout is None else timeout

    def _twin(self, cls: type[C]) -> C:
        if isinstance(self, cls):
            return self
        twin = cls.__new__(cls)
        twin.settings, twin.backend = self.settings, self.backend
        twin.delegation = self.delegation
        return twin

    def as_sync(self) -> Client:
        """This client as a ``Client``, sharing settings and backend."""
        return self._twin(Client)

    def as_async(self) -> AsyncClient:
        """This client as an ``AsyncClient``, sharing settings and backend."""
        return self._twin(AsyncClient)

    def intercept(
        self,
        fn: Callable[P, R] | None = None,
        /,
        *,
        tool: str | None = None,
        capture_arguments: bool = False,
        wait: bool = True,
        timeout: float | None = None,
        **fields: Any,
    ) -> Any:
        """Decorate a sync or async function so that each call is decided first.

        The tool name defaults to the function's name; ``fields`` are Action
        fields (risk_level, operation_class, …), validated now. By default only
        argument names, types and sizes are sent; ``capture_arguments=True`` lets
        policy see the (DLP-masked) values. The approval is bound to the real
        values either way.
        """

        def decorate(func: Callable[P, R]) -> Callable[P, R]:
            spec = _CallSpec(func, tool, capture_arguments, fields)
            if inspect.iscoroutinefunction(func):
                return self.as_async()._wrap(func, spec, wait, timeout)  # type: ignore[return-value]
            return self.as_sync()._wrap(func, spec, wait, timeout)

        return decorate(fn) if fn is not None else decorate


class Client(_BaseClient):
    """The synchronous client. Thread-safe if its backend is."""

    def _call(self, fn: Callable[..., R], *args: Any) -> R:
        """One backend call, bounded by ``decision_timeout``; any failure is a BackendError."""
        if _bounds_its_own_waits(fn):
            return _as_backend_error(fn, args)
        future = _WORKERS.submit(copy_context().run, _as_backend_error, fn, args)
        finished, _ = wait_for([future], timeout=self.settings.decision_timeout)
        if not finished:
            future.cancel()
            raise BackendError(f"backend did not answer within {self.settings.decision_timeout} s")
        return future.result()

    def _decide(self, request: DecisionRequest) -> Decision:
        try:
            sent = self._signed(request)
            decision = self._checked(request, self._call(self.backend.decide, sent))
        except BackendError as error:
            decision = self._on_failure(request, error)
        _context.notify(decision)
        return decision

    def decide(self, action: Action | DecisionRequest | None = None, /, **fields: Any) -> Decision:
        """Ask for a decision. Never raises for a denial; raises BackendError
        (fail closed) when no valid decision can be had."""
        return self._decide(self._prepared(action, fields))

    def preview(self, action: Action | DecisionRequest | None = None, /, **fields: Any) -> Decision:
        """What ``decide`` would answer now, as a dry run: nothing is recorded and no
        limit is spent (e.g. to hide tools that policy blocks). Raises BackendError
        when no valid answer can be had; never fails open."""
        request = self._preview_request(action, fields)
        return self._checked(request, self._call(self.backend.preview, self._signed(request)))

    def wait_for_approval(self, decision: Decision, timeout: float | None = None) -> Decision:
        """Wait for a reviewer. Returns the approved decision or raises
        Rejected, ApprovalExpired or ApprovalTimeout (which carries the approval id).
        Says at WARNING on the ``gatekit`` logger what it waits for, and how to approve."""
        waiting = _Waiting(decision, self._timeout(timeout))
        for delay in _poll_delays():
            if decision.status is not Status.PENDING_REVIEW:
                break
            waiting.tell()
            if waiting.over():
                raise ApprovalTimeout(decision, "no review within the allowed time")
            time.sleep(waiting.bounded(delay))
            decision = self.refresh(decision)
        self._raise_unless_allowed(decision)
        return decision

    def approve(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        """Record a human's approval (the backend must accept reviews)."""
        return self._call(
            functools.partial(
                self._reviews().approve, approval_id, reviewer=reviewer, comment=comment
            )
        )

    def reject(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        """Record a human's rejection (the backend must accept reviews)."""
        return self._call(
            functools.partial(
                self._reviews().reject, approval_id, reviewer=reviewer, comment=comment
            )
        )

    def consume(self, decision: Decision, request: DecisionRequest) -> Decision:
        """Just before running: raise unless ``decision`` lets ``request`` run. A
        single-use decision (an approval, or one with an idempotency key) is
        re-checked by the engine and used up; ``guard`` and ``intercept`` do this."""
        self._raise_unless_allowed(self._checked(request, decision))
        if not self._needs_consume(decision):
            return decision
        answer = self._call(self.backend.consume, decision.decision_id, request)
        used = self._checked(request, answer)
        self._raise_unless_allowed(used)
        return used

    def _authorize(self, request: DecisionRequest, wait: bool, timeout: float | None) -> Decision:
        decision = self._decide(request)
        if decision.status is Status.PENDING_REVIEW and wait:
            decision = self.wait_for_approval(decision, timeout)
        return self.consume(decision, request)

    @contextmanager
    def _guarded(
        self, request: DecisionRequest, wait: bool, timeout: float | None
    ) -> Iterator[Decision]:
        decision = self._authorize(request, wait, timeout)
        try:
            yield decision
        except BaseException as error:
            self.report(decision, self._outcome(error), quiet=True)
            raise
        self.report(decision, self._outcome(None), quiet=True)

    def guard(
        self,
        action: Action | DecisionRequest | None = None,
        /,
        *,
        wait: bool = True,
        timeout: float | None = None,
        **fields: Any,
    ) -> AbstractContextManager[Decision]:
        """``with client.guard(tool=…, …) as decision:`` — the body runs only when allowed.

        Waits up to ``timeout`` for a review when ``wait`` (else raises PendingReview),
        re-checks an approval just before the body, and reports the outcome after it.
        """
        return self._guarded(self._prepared(action, fields), wait, timeout)

    def _wrap(
        self, func: Callable[P, R], spec: _CallSpec, wait: bool, timeout: float | None
    ) -> Callable[P, R]:
        @functools.wraps(func)
        def gated(*args: P.args, **kwargs: P.kwargs) -> R:
            # ``_guarded``, written out: this is every decorated call's path.
            call = spec.call(args, kwargs, self._context_fields(spec.template))
            decision = self._authorize(self._prepare_call(call), wait, timeout)
            try:
                decided_args, decided_kwargs = call.arguments(decision)
                result = func(*decided_args, **decided_kwargs)
            except BaseException as error:
                self.report(decision, self._outcome(error), quiet=True)
                raise
            self.report(decision, _SUCCESS, quiet=True)
            return result

        return gated

    def report(self, decision: Decision, outcome: Outcome | str, *, quiet: bool = False) -> None:
        """Record what happened after the action ran. ``quiet`` logs a failure to
        record instead of raising: the action already ran, and a failed report must
        not look like a failed action."""
        try:
            self._call(self.backend.report, decision.decision_id, self._coerce_outcome(outcome))
        except Exception as exc:
            if not quiet:
                raise
            logger.warning("gatekit: could not report outcome of %s: %s", decision.decision_id, exc)

    def refresh(self, decision: Decision) -> Decision:
        """The decision as the engine has it now (a reviewer may have acted)."""
        answer = self._call(self.backend.get_decision, decision.decision_id)
        return self._refreshed(decision, answer)

    def ready(self) -> bool:
        try:
            return bool(self.backend.ready())
        except Exception:
            return False

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(_BaseClient):
    """The asyncio/trio client (anyio). Backend calls are bounded by ``decision_timeout``."""

    async def _call(self, fn: Callable[..., Awaitable[R]], *args: Any) -> R:
        timeout = self.settings.decision_timeout
        try:
            with anyio.move_on_after(timeout):
                return await fn(*args)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise BackendError(f"backend failed: {type(exc).__name__}: {exc}") from exc
        raise BackendError(f"backend did not answer within {timeout} s")

    async def _decide(self, request: DecisionRequest) -> Decision:
        try:
            sent = self._signed(request)
            decision = self._checked(request, await self._call(self.backend.adecide, sent))
        except BackendError as error:
            decision = self._on_failure(request, error)
        _context.notify(decision)
        return decision

    async def decide(
        self, action: Action | DecisionRequest | None = None, /, **fields: Any
    ) -> Decision:
        """See ``Client.decide``."""
        return await self._decide(self._prepared(action, fields))

    async def preview(
        self, action: Action | DecisionRequest | None = None, /, **fields: Any
    ) -> Decision:
        """See ``Client.preview``."""
        request = self._preview_request(action, fields)
        sent = self._signed(request)
        return self._checked(request, await self._call(self.backend.apreview, sent))

    async def wait_for_approval(self, decision: Decision, timeout: float | None = None) -> Decision:
        """See ``Client.wait_for_approval``."""
        waiting = _Waiting(decision, self._timeout(timeout))
        for delay in _poll_delays():
            if decision.status is not Status.PENDING_REVIEW:
                break
            waiting.tell()
            if waiting.over():
                raise ApprovalTimeout(decision, "no review within the allowed time")
            await anyio.sleep(waiting.bounded(delay))
            decision = await self.refresh(decision)
        self._raise_unless_allowed(decision)
        return decision

    async def approve(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        """See ``Client.approve``."""
        approve = functools.partial(
            self._reviews().approve, approval_id, reviewer=reviewer, comment=comment
        )
        return await self._call(self._in_thread(approve))

    async def reject(self, approval_id: str, *, reviewer: str, comment: str = "") -> Decision:
        """See ``Client.reject``."""
        reject = functools.partial(
            self._reviews().reject, approval_id, reviewer=reviewer, comment=comment
        )
        return await self._call(self._in_thread(reject))

    @staticmethod
    def _in_thread(fn: Callable[[], R]) -> Callable[[], Awaitable[R]]:
        """A sync backend call, off the event loop (reviews have no async form)."""

        async def call() -> R:
            return await anyio.to_thread.run_sync(fn)

        return call

    async def consume(self, decision: Decision, request: DecisionRequest) -> Decision:
        """See ``Client.consume``."""
        self._raise_unless_allowed(self._checked(request, decision))
        if not self._needs_consume(decision):
            return decision
        answer = await self._call(self.backend.aconsume, decision.decision_id, request)
        used = self._checked(request, answer)
        self._raise_unless_allowed(used)
        return used

    async def _authorize(
        self, request: DecisionRequest, wait: bool, timeout: float | None
    ) -> Decision:
        decision = await self._decide(request)
        if decision.status is Status.PENDING_REVIEW and wait:
            decision = await self.wait_for_approval(decision, timeout)
        return await self.consume(decision, request)

    @asynccontextmanager
    async def _guarded(
        self, request: DecisionRequest, wait: bool, timeout: float | None
    ) -> AsyncIterator[Decision]:
        decision = await self._authorize(request, wait, timeout)
        try:
            yield decision
        except BaseException as error:
            with anyio.CancelScope(shield=True):
                await self.report(decision, self._outcome(error), quiet=True)
            raise
        await self.report(decision, self._outcome(None), quiet=True)

    def guard(
        self,
        action: Action | DecisionRequest | None = None,
        /,
        *,
        wait: bool = True,
        timeout: float | None = None,
        **fields: Any,
    ) -> AbstractAsyncContextManager[Decision]:
        """``async with client.guard(…) as decision:`` — see ``Client.guard``."""
        return self._guarded(self._prepared(action, fields), wait, timeout)

    def _wrap(
        self, func: Callable[P, Awaitable[R]], spec: _CallSpec, wait: bool, timeout: float | None
    ) -> Callable[P, Awaitable[R]]:
        @functools.wraps(func)
        async def gated(*args: P.args, **kwargs: P.kwargs) -> R:
            call = spec.call(args, kwargs, self._context_fields(spec.template))
            request = self._prepare_call(call)
            async with self._guarded(request, wait, timeout) as decision:
                decided_args, decided_kwargs = call.arguments(decision)
                return await func(*decided_args, **decided_kwargs)

        return gated

    async def report(
        self, decision: Decision, outcome: Outcome | str, *, quiet: bool = False
    ) -> None:
        """See ``Client.report``."""
        try:
            await self._call(
                self.backend.areport, decision.decision_id, self._coerce_outcome(outcome)
            )
        except Exception as exc:
            if not quiet:
                raise
            logger.warning("gatekit: could not report outcome of %s: %s", decision.decision_id, exc)

    async def refresh(self, decision: Decision) -> Decision:
        """See ``Client.refresh``."""
        answer = await self._call(self.backend.aget_decision, decision.decision_id)
        return self._refreshed(decision, answer)

    async def ready(self) -> bool:
        try:
            return bool(await self._call(self.backend.aready))
        except Exception:
            return False

    async def aclose(self) -> None:
        await self.backend.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


@functools.cache
def default_client() -> Client:
    """The client behind module-level ``gatekit.intercept``, built from ``GATEKIT_*``."""
    return Client()


def intercept(
    fn: Callable[P, R] | None = None,
    /,
    *,
    tool: str | None = None,
    capture_arguments: bool = False,
    wait: bool = True,
    timeout: float | None = None,
    **fields: Any,
) -> Any:
    """``@gatekit.intercept(risk_level="high", …)`` with the default client."""
    return default_client().intercept(
        fn, tool=tool, capture_arguments=capture_arguments, wait=wait, timeout=timeout, **fields
    )
