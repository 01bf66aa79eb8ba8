"""The kit every framework adapter is built on: ours (LangChain, CrewAI, MCP) and yours.

    from gatekit.adapters import Refused, ToolCallGate, require

    require("myframework", ">=2,<3", adapter="gatekit-myframework")   # at import

    gate = ToolCallGate(client, tools={"send_email": {"risk_level": "high"}},
                        default={"risk_level": "low"})

    def call_tool(name, arguments):
        try:
            request = gate.request(name, arguments)
            return gate.run(request, lambda decision: TOOLS[name](**arguments))
        except Refused as refused:          # the tool did not run; its own errors pass
            return framework_error_message(gate.refusal(refused).message)

An adapter only translates: the framework's call into ``gate.request(...)``,
and a ``Refusal`` into what the framework shows the model (a ToolMessage, a
ToolFailure, a CallToolResult). Everything else — the Action, JSON-safe
arguments, the lazy default client, decide → wait for a review or refuse →
consume → run → report — is written here once, sync and async.

The same options have the same names in every adapter:

``on_review``
    ``"wait"`` (default): wait for a reviewer, up to ``review_timeout`` seconds
    (the client's ``approval_timeout`` when None); ``"refuse"``: refuse at once
    with ``pending_review`` (the model may retry once a human approved).
    (LangChain adds ``"interrupt"`` and ``"auto"``.)
``on_denied``
    ``"message"`` (default): the refusal reaches the model as the framework's
    error result; ``"raise"``: the gatekit exception is raised.
``tools`` / ``default``
    Action fields per tool name, and for every tool not listed. Single-tool
    wrappers take the fields as keyword arguments.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Literal, TypeVar, get_args

import anyio
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version
from pydantic_core import to_jsonable_python

from gatekit._client import AsyncClient, Client, default_client
from gatekit._context import RunContext, current_run
from gatekit._exceptions import (
    ApprovalConsumed,
    ApprovalExpired,
    ApprovalTimeout,
    BackendError,
    Blocked,
    ConfigurationError,
    DecisionError,
    GatekitError,
    IdempotencyConflict,
    PendingReview,
    RateLimited,
    Rejected,
    ReviewConflict,
    ValidationError,
)
from gatekit._models import (
    Action,
    Check,
    Decision,
    DecisionRequest,
    Outcome,
    Status,
    canonical_digest,
)
from gatekit._settings import Settings, load_settings

__all__ = [
    "DenialMode",
    "Refusal",
    "Refused",
    "ReviewMode",
    "RunContext",
    "ToolCallGate",
    "current_run",
    "digest",
    "json_arguments",
    "require",
    "settings",
]

logger = logging.getLogger("gatekit.adapters")

R = TypeVar("R")

ReviewMode = Literal["wait", "refuse"]
DenialMode = Literal["message", "raise"]

# Action fields an adapter fills from each call; users set the governance ones.
ADAPTER_FIELDS = frozenset({"tool", "arguments", "idempotency_key"})


def require(distribution: str, spec: str, *, adapter: str) -> str:
    """Check, at an adapter's import, that ``distribution`` is installed in the
    supported range ``spec`` (PEP 440, e.g. ``">=1.0,<2"``); returns its version.

    Raises ImportError naming the range and how to install it: a framework off
    the range would fail in confusing ways deep inside an agent run instead.
    """
    try:
        wanted = SpecifierSet(spec)
    except InvalidSpecifier as exc:
        raise ValueError(f"{adapter}: invalid version range {spec!r} for {distribution}") from exc
    hint = f"pip install '{distribution}{spec}'"
    try:
        installed = metadata.version(distribution)
    except metadata.PackageNotFoundError:
        raise ImportError(
            f"{adapter} needs {distribution}{spec}, which is not installed: {hint}"
        ) from None
    try:
        supported = wanted.contains(Version(installed), prereleases=True)
    except InvalidVersion:
        supported = False
    if not supported:
        raise ImportError(
            f"{adapter} supports {distribution}{spec}, but {distribution} {installed} is "
            f"installed; install a supported version: {hint}"
        )
    return installed


def digest(value: Any) -> str:
    """SHA-256 over the RFC 8785 canonical JSON of ``value`` (how actions are digested)."""
    return canonical_digest(value)


def settings() -> Settings:
    """The ``GATEKIT_*`` settings (ConfigurationError naming the variable when invalid)."""
    return load_settings()


def json_arguments(values: Mapping[str, Any]) -> dict[str, Any]:
    """A tool call's arguments as JSON values (what an Action carries); a value JSON
    cannot hold is recorded by its ``repr``."""
    return {str(name): to_jsonable_python(value, fallback=repr) for name, value in values.items()}


# -- refusals ---------------------------------------------------------------------------

# Most specific first (RateLimited is a Blocked): (error, code, what the model is told).
_WHY_NOT: tuple[tuple[type[GatekitError], str, str], ...] = (
    (RateLimited, "rate_limited", "rate limited"),
    (Blocked, "blocked", "blocked by policy"),
    (Rejected, "rejected", "a human reviewer rejected it"),
    (PendingReview, "pending_review", "it waits for human review"),
    (ApprovalTimeout, "approval_timeout", "no reviewer decided in time"),
    (ApprovalExpired, "expired", "its approval expired"),
    (ApprovalConsumed, "approval_consumed", "its approval was already used"),
    (ValidationError, "invalid_call", "the call is invalid"),
    (IdempotencyConflict, "conflict", "its idempotency key belongs to another call"),
    (ReviewConflict, "conflict", "its review was already decided"),
)
_RETRYABLE = (RateLimited, PendingReview, ApprovalTimeout, ApprovalExpired, BackendError)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a tool call did not run, in one shape for every framework.

    ``message`` is for the model: the decision's reason and what to do next
    (an approval id to wait for, seconds to wait), never a backend's internals,
    which go to the log (and the audit) instead. ``code`` is stable
    (``blocked``, ``rate_limited``, ``pending_review``, ``rejected``,
    ``approval_timeout``, ``expired``, ``approval_consumed``, ``invalid_call``,
    ``conflict``, ``no_decision``).
    """

    code: str
    message: str
    retryable: bool
    retry_after: float | None = None
    approval_id: str | None = None
    decision: Decision | None = None

    @classmethod
    def of(cls, tool: str, error: BaseException) -> Refusal:
        """The refusal for ``error``, raised while asking to run ``tool``."""
        kind = next(((code, why) for k, code, why in _WHY_NOT if isinstance(error, k)), None)
        if kind is None:  # no valid decision: say so, keep the details out
            logger.warning("gatekit: no valid decision for %s, not run: %r", tool, error)
            return cls(
                code="no_decision",
                message=(
                    f"gatekit could not get a decision for tool {tool!r}, so it did not run; "
                    "try again later or report it to an operator"
                ),
                retryable=True,
            )
        code, why = kind
        decision = error.decision if isinstance(error, DecisionError) else None
        reason = error.reason if isinstance(error, DecisionError) else str(error)
        approval_id = decision.approval_id if decision is not None else None
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        message = f"gatekit did not run tool {tool!r}: {why}: {reason}"
        if approval_id and isinstance(error, PendingReview | ApprovalTimeout):
            message += f" (approval {approval_id}; retry the same call once it is approved)"
        if retry_after is not None:
            message += f" (retry after {retry_after:g} s)"
        return cls(
            code=code,
            message=message,
            retryable=isinstance(error, _RETRYABLE),
            retry_after=retry_after,
            approval_id=approval_id,
            decision=decision,
        )


class Refused(Exception):
    """A tool call that must not run: ``error`` is the gatekit exception that says why,
    ``refusal`` what the model is told. Raised by ``ToolCallGate`` before the tool
    runs, never for the tool's own errors."""

    def __init__(self, tool: str, error: GatekitError) -> None:
        self.tool = tool
        self.error = error
        self.refusal = Refusal.of(tool, error)
        super().__init__(self.refusal.message)


@contextmanager
def _refusing(request: DecisionRequest) -> Iterator[None]:
    try:
        yield
    except GatekitError as error:
        raise Refused(request.action.tool, error) from error


# -- the gate -------------------------------------------------------------------------

SyncReview = Callable[[DecisionRequest, Decision], Decision]
AsyncReview = Callable[[DecisionRequest, Decision], Awaitable[Decision]]


def check_fields(tool: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate action fields once, when a tool is wrapped, not at its first call."""
    clash = sorted(ADAPTER_FIELDS & fields.keys())
    if clash:
        raise ValidationError(
            f"{', '.join(clash)} cannot be set: the adapter takes them from each tool call",
            field=clash[0],
        )
    Action(tool=tool, **fields)
    return dict(fields)


class ToolCallGate:
    """Decides each tool call and runs it only when allowed; framework-free.

    ``client`` is a ``Client`` or ``AsyncClient`` (either serves ``run`` and
    ``arun``), by default ``gatekit.default_client()`` resolved at the first
    call, so wrapping tools at import time builds no engine. See the module
    docstring for ``on_review``, ``review_timeout``, ``on_denied``, ``tools`` and
    ``default``; fields are validated now.
    """

    def __init__(
        self,
        client: Client | AsyncClient | None = None,
        *,
        on_review: ReviewMode = "wait",
        review_timeout: float | None = None,
        on_denied: DenialMode = "message",
        tools: Mapping[str, Mapping[str, Any]] | None = None,
        default: Mapping[str, Any] | None = None,
    ) -> None:
        if client is not None and not isinstance(client, Client | AsyncClient):
            raise ConfigurationError(
                f"client must be a gatekit Client or AsyncClient, got {type(client).__name__}"
            )
        _one_of("on_review", on_review, get_args(ReviewMode))
        _one_of("on_denied", on_denied, get_args(DenialMode))
        if review_timeout is not None and review_timeout <= 0:
            raise ConfigurationError("review_timeout must be positive")
        self._given_client = client
        self.on_review: ReviewMode = on_review
        self.review_timeout = review_timeout
        self.on_denied: DenialMode = on_denied
        self.tools = {name: check_fields(name, fields) for name, fields in (tools or {}).items()}
        self.default = check_fields("default", default or {})

    @functools.cached_property
    def client(self) -> Client:
        return (self._given_client or default_client()).as_sync()

    @functools.cached_property
    def aclient(self) -> AsyncClient:
        return (self._given_client or default_client()).as_async()

    def fields_for(self, tool: str) -> dict[str, Any]:
        return self.tools.get(tool, self.default)

    def request(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        *,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        review_key: str | None = None,
        checks: list[Check] | None = None,
    ) -> DecisionRequest:
        """The prepared request for one call of ``tool``; raises ``Refused`` for a call
        that cannot be an Action (a value JSON cannot hold exactly, invalid fields)."""
        fields = self.fields_for(tool)
        merged_metadata = {**fields.get("metadata", {}), **(metadata or {})}
        try:
            action = Action(
                **{**fields, "metadata": merged_metadata},
                tool=tool,
                arguments=json_arguments(arguments),
                idempotency_key=idempotency_key,
            )
            return self.client.prepare(action, checks=checks or (), review_key=review_key)
        except GatekitError as error:
            raise Refused(tool, error) from error

    def refusal(self, refused: Refused) -> Refusal:
        """What to tell the model, or the gatekit error raised when ``on_denied="raise"``."""
        if self.on_denied == "raise":
            raise refused.error
        return refused.refusal

    # -- sync ----------------------------------------------------------------------------

    def authorize(self, request: DecisionRequest, *, review: SyncReview | None = None) -> Decision:
        """Decide, handle a review (``review`` hook, else ``on_review``), and use the
        decision up; raises ``Refused`` when the call must not run."""
        client = self.client
        with _refusing(request):
            decision = client.decide(request)
            if decision.status is Status.PENDING_REVIEW:
                if review is not None:
                    decision = review(request, decision)
                elif self.on_review == "wait":
                    decision = client.wait_for_approval(decision, self.review_timeout)
            return client.consume(decision, request)

    def run(
        self,
        request: DecisionRequest,
        body: Callable[[Decision], R],
        *,
        review: SyncReview | None = None,
        outcome: Callable[[R], Outcome] | None = None,
    ) -> R:
        """``body(decision)`` if the call is allowed, with its outcome reported after.
        Raises ``Refused`` when it must not run; the body's own errors pass unchanged."""
        decision = self.authorize(request, review=review)
        try:
            result = body(decision)
        except BaseException as error:
            self.client.report(decision, Outcome.of_error(error), quiet=True)
            raise
        self.client.report(decision, _outcome(result, outcome), quiet=True)
        return result

    # -- async ---------------------------------------------------------------------------

    async def aauthorize(
        self, request: DecisionRequest, *, review: AsyncReview | None = None
    ) -> Decision:
        """See ``authorize``."""
        client = self.aclient
        with _refusing(request):
            decision = await client.decide(request)
            if decision.status is Status.PENDING_REVIEW:
                if review is not None:
                    decision = await review(request, decision)
                elif self.on_review == "wait":
                    decision = await client.wait_for_approval(decision, self.review_timeout)
            return await client.consume(decision, request)

    async def arun(
        self,
        request: DecisionRequest,
        body: Callable[[Decision], Awaitable[R]],
        *,
        review: AsyncReview | None = None,
        outcome: Callable[[R], Outcome] | None = None,
    ) -> R:
        """See ``run``."""
        decision = await self.aauthorize(request, review=review)
        try:
            result = await body(decision)
        except BaseException as error:
            with anyio.CancelScope(shield=True):  # even a cancelled call is recorded
                await self.aclient.report(decision, Outcome.of_error(error), quiet=True)
            raise
        await self.aclient.report(decision, _outcome(result, outcome), quiet=True)
        return result


def _outcome(result: R, outcome: Callable[[R], Outcome] | None) -> Outcome:
    return outcome(result) if outcome is not None else Outcome(status="success")


def _one_of(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise ConfigurationError(f"{name} must be one of {allowed}, got {value!r}")
