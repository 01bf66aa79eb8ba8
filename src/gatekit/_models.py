"""The vocabulary shared by every framework: Action in, Decision out."""

from __future__ import annotations

import asyncio
import hashlib
import math
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

import pydantic
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from gatekit._canonical import canonical_json, json_string, typed_json
from gatekit._exceptions import ValidationError
from gatekit._identity import canonical_identity

__all__ = [
    "Action",
    "Check",
    "CheckOutcome",
    "DataSensitivity",
    "Decision",
    "DecisionRequest",
    "DelegationEnvelope",
    "OperationClass",
    "Outcome",
    "RiskLevel",
    "Status",
    "Verdict",
    "canonical_digest",
]


class RiskLevel(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def never_auto_allowed(self) -> bool:
        """High and critical actions always need a human, whatever the rules say."""
        return self in (RiskLevel.HIGH, RiskLevel.CRITICAL)


class OperationClass(StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXECUTE = "execute"
    FINANCIAL = "financial"
    COMMUNICATE = "communicate"
    ADMIN = "admin"


class DataSensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"
    FINANCIAL = "financial"
    PII = "pii"


class Verdict(StrEnum):
    """What a rule or check says; ordered from least to most restrictive."""

    ALLOW = "allow"
    REVIEW = "review"
    BLOCK = "block"

    @property
    def severity(self) -> int:
        return _VERDICT_SEVERITY[self]


_VERDICT_SEVERITY = {Verdict.ALLOW: 0, Verdict.REVIEW: 1, Verdict.BLOCK: 2}


class Status(StrEnum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"
    PENDING_REVIEW = "pending_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


class CheckOutcome(StrEnum):
    PASS = "pass"
    WARN = "warn"
    REVIEW = "review"
    BLOCK = "block"


# Fields that decide how an action is governed; metadata may not smuggle them in.
GOVERNANCE_FIELDS = frozenset(
    {
        "intent_id",
        "tool",
        "arguments",
        "risk_level",
        "operation_class",
        "data_sensitivity",
        "systems_touched",
        "agent_id",
        "run_id",
        "session_id",
        "idempotency_key",
    }
)


def canonical_digest(value: Any) -> str:
    """SHA-256 over the RFC 8785 canonical JSON of ``value``, as hex."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


# RFC 8785 (the digest's canonical JSON) holds integers only as exact IEEE doubles.
_MAX_SAFE_INTEGER = 2**53 - 1


def _printable(value: str | None, field: str) -> str | None:
    """Names and keys are looked up in the store: a control character (U+0000 above
    all, which PostgreSQL cannot store) makes them unusable, so it is refused here."""
    if value is not None and not value.isprintable():
        hidden = next((c for c in value if unicodedata.category(c) == "Cc"), None)
        if hidden is not None:
            raise ValueError(f"{field} contains a control character (U+{ord(hidden):04X})")
    return value


def _check_json(value: Any, field: str) -> None:
    """Reject what JSON cannot carry faithfully (NaN, infinities, unsafe integers)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{field} contains a non-finite number")
    if isinstance(value, int) and abs(value) > _MAX_SAFE_INTEGER:
        raise ValueError(f"{field} is an integer too large to be digested exactly (over 2**53)")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json(item, f"{field}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{field}[{index}]")


_set = object.__setattr__


class _Model(BaseModel):
    """Base for public models: pydantic errors surface as ``gatekit.ValidationError``."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    @classmethod
    def _trusted(cls, **values: Any) -> Self:
        """An instance from values its maker typed itself, every field given in the
        model's field order (serialisation follows it; a test pins each caller):
        no validation, and none of ``model_construct``'s per-field look-ups (this
        runs on every decision)."""
        instance = cls.__new__(cls)
        _set(instance, "__dict__", values)
        _set(instance, "__pydantic_fields_set__", set(values))
        _set(instance, "__pydantic_extra__", None)
        _set(instance, "__pydantic_private__", _private_defaults(cls))
        return instance

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise _translate(exc, type(self).__name__) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        try:
            return super().model_validate(obj, *args, **kwargs)
        except pydantic.ValidationError as exc:
            raise _translate(exc, cls.__name__) from None

    @classmethod
    def model_validate_json(
        cls, json_data: str | bytes | bytearray, *args: Any, **kwargs: Any
    ) -> Self:
        try:
            return super().model_validate_json(json_data, *args, **kwargs)
        except pydantic.ValidationError as exc:
            raise _translate(exc, cls.__name__) from None


def _private_defaults(cls: type[BaseModel]) -> dict[str, Any] | None:
    """A fresh dict of ``cls``'s private attributes' defaults (None if it has none)."""
    attributes = cls.__private_attributes__
    if not attributes:
        return None
    constant = _CONSTANT_PRIVATE_DEFAULTS.get(cls)
    if constant is not None:
        return dict(constant)
    defaults = {name: attribute.get_default() for name, attribute in attributes.items()}
    if all(attribute.default_factory is None for attribute in attributes.values()):
        _CONSTANT_PRIVATE_DEFAULTS[cls] = dict(defaults)
    return defaults


# Per model class, private defaults without a factory: copied, not made, per instance.
_CONSTANT_PRIVATE_DEFAULTS: dict[type[BaseModel], dict[str, Any]] = {}


def _translate(exc: pydantic.ValidationError, model: str) -> ValidationError:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or None
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
    )
    return ValidationError(f"invalid {model}: {problems}", field=field)


class Action(_Model):
    """What an agent wants to do. Immutable; use ``model_copy(update=…)`` to derive."""

    tool: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    intent_id: Annotated[str, StringConstraints(strip_whitespace=True)] = Field(
        default="", description="Stable action name; defaults to the tool."
    )
    arguments: dict[str, JsonValue] = Field(default_factory=dict)
    risk_level: RiskLevel = RiskLevel.MEDIUM
    operation_class: OperationClass = OperationClass.EXECUTE
    data_sensitivity: DataSensitivity = DataSensitivity.INTERNAL
    systems_touched: list[str] = Field(default_factory=lambda: ["unspecified"], min_length=1)
    agent_id: str | None = None
    run_id: str | None = None
    session_id: str | None = None
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("systems_touched")
    @classmethod
    def _nonempty_systems(cls, value: list[str]) -> list[str]:
        if any(not system.strip() for system in value):
            raise ValueError("system names must not be empty")
        return value

    @field_validator("tool", "intent_id", "run_id", "session_id", "idempotency_key")
    @classmethod
    def _printable_names(cls, value: str | None, info: pydantic.ValidationInfo) -> str | None:
        return _printable(value, info.field_name or "value")

    @field_validator("agent_id")
    @classmethod
    def _visible_agent_id(cls, value: str | None) -> str | None:
        if value is not None:
            canonical_identity(value, field="agent_id")  # refuses invisible characters
        return value

    @field_validator("arguments", "metadata")
    @classmethod
    def _json_only(
        cls, value: dict[str, JsonValue], info: pydantic.ValidationInfo
    ) -> dict[str, JsonValue]:
        _check_json(value, info.field_name or "value")
        return value

    @field_validator("metadata")
    @classmethod
    def _no_governance_override(cls, value: dict[str, JsonValue]) -> dict[str, JsonValue]:
        clash = sorted(GOVERNANCE_FIELDS & value.keys())
        if clash:
            raise ValueError(f"metadata cannot set governance field(s): {', '.join(clash)}")
        return value

    @model_validator(mode="after")
    def _default_intent(self) -> Self:
        if not self.intent_id:
            object.__setattr__(self, "intent_id", self.tool)
        return self

    def digest(self) -> str:
        """SHA-256 binding an approval to exactly this action (RFC 8785 canonical JSON).

        Covers what the action does and who asks; not the run, session or key,
        so the same action retried after a restart has the same digest.
        """
        return self.digest_with(canonical_json(self.arguments))

    def digest_with(self, arguments_json: bytes) -> str:
        """``digest()``, given the canonical JSON of ``arguments`` already made."""
        return ActionJson(self).digest(self.agent_id, arguments_json)

    def canonical(self, arguments_json: bytes | None = None) -> bytes:
        """The canonical JSON of ``model_dump(mode="json")``: how audit records hold
        the action. ``arguments_json``: that of ``arguments``, if already made."""
        if arguments_json is None:
            arguments_json = canonical_json(self.arguments)
        return ActionJson(self).document(
            self.agent_id, self.run_id, self.session_id, arguments_json
        )


def _string_or_null(value: str | None) -> bytes:
    return b"null" if value is None else json_string(value)


class ActionJson:
    """The canonical JSON of an action, and its digest, written field by field
    (tests pin both to the canonical JSON of the same dicts).

    Made from one action, it serves every action that differs from it only in
    its arguments and run context (agent, run, session): what a decorated
    function's calls do. Their fixed parts are then written once, not per call.
    The arguments come as canonical JSON, made once per call by the caller.
    """

    __slots__ = ("_digest_tail", "_document_middle", "_document_tail")

    def __init__(self, action: Action) -> None:
        sensitivity = b',"data_sensitivity":' + json_string(action.data_sensitivity.value)
        intent = b',"intent_id":' + json_string(action.intent_id)
        classes = (
            b',"operation_class":'
            + json_string(action.operation_class.value)
            + b',"risk_level":'
            + json_string(action.risk_level.value)
        )
        tool = b',"tool":' + json_string(action.tool) + b"}"
        # The digest covers what the action does and who asks (see Action.digest),
        # with the systems sorted; the document is the model's dump, as it is.
        systems = typed_json(sorted(action.systems_touched))
        self._digest_tail = b"".join(
            (sensitivity, intent, classes, b',"systems_touched":', systems, tool)
        )
        self._document_middle = b"".join(
            (
                sensitivity,
                b',"idempotency_key":',
                _string_or_null(action.idempotency_key),
                intent,
                b',"metadata":',
                canonical_json(action.metadata) if action.metadata else b"{}",
                classes,
            )
        )
        self._document_tail = b',"systems_touched":' + typed_json(action.systems_touched) + tool

    def digest(self, agent_id: str | None, arguments_json: bytes) -> str:
        body = b"".join(
            (
                b'{"agent_id":',
                _string_or_null(agent_id),
                b',"arguments":',
                arguments_json,
                self._digest_tail,
            )
        )
        return hashlib.sha256(body).hexdigest()

    def document(
        self,
        agent_id: str | None,
        run_id: str | None,
        session_id: str | None,
        arguments_json: bytes,
    ) -> bytes:
        return b"".join(
            (
                b'{"agent_id":',
                _string_or_null(agent_id),
                b',"arguments":',
                arguments_json,
                self._document_middle,
                b',"run_id":',
                _string_or_null(run_id),
                b',"session_id":',
                _string_or_null(session_id),
                self._document_tail,
            )
        )


class Check(_Model):
    """One check's result: a shield, a limit, DLP, delegation, trust, …"""

    name: str
    outcome: CheckOutcome
    detail: str = ""
    path: str | None = Field(
        default=None, description="Where in the action, e.g. args.files[2].path"
    )


class DelegationEnvelope(_Model):
    """What a request made under delegation carries: the token chain (root first),
    the request proof, and the exact body bytes the proof signs (the canonical JSON
    of the action sent). The engine verifies it before any policy runs."""

    chain: list[str]
    proof: str
    body: bytes


class DecisionRequest(_Model):
    """What a client sends to a backend.

    ``action_digest`` is computed by the client over the *unmasked* action, so an
    approval binds to the exact values even though only masked values leave the
    process. ``client_checks`` carries findings made before sending (DLP).
    """

    action: Action
    action_digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    client_checks: list[Check] = Field(default_factory=list)
    review_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The call's stable name across retries: while its review is open "
        "(pending, or approved and unused), a retry gets that review back instead of a new one.",
    )
    delegation: DelegationEnvelope | None = None

    @field_validator("review_key")
    @classmethod
    def _printable_review_key(cls, value: str | None) -> str | None:
        return _printable(value, "review_key")

    # Set by Client.prepare and never serialized: the unmasked action, for an
    # engine in the same process (the values do not leave it that way).
    _unmasked: Action | None = PrivateAttr(default=None)
    # Set by the engine once ``delegation`` verified (a ``VerifiedDelegation``), for
    # policy to read; never taken from the wire.
    _verified_delegation: Any = PrivateAttr(default=None)
    # Set by Client.prepare: the ``DelegationChain`` each send of this request is
    # signed under (a fresh proof every time).
    _delegation_chain: Any = PrivateAttr(default=None)
    # ``(action, its canonical JSON)``: made once, by the client or the first use.
    _action_json: tuple[Action, bytes] | None = PrivateAttr(default=None)

    @property
    def verified_delegation(self) -> Any:
        """The engine's ``VerifiedDelegation`` for this request, or None."""
        return self._verified_delegation

    @classmethod
    def for_action(cls, action: Action, checks: list[Check] | None = None) -> DecisionRequest:
        return cls(action=action, action_digest=action.digest(), client_checks=checks or [])

    def _private(self) -> dict[str, Any]:
        """The private attributes, read and written straight (on every gated call,
        pydantic's attribute protocol for them costs more than the rest of a read)."""
        private = self.__pydantic_private__
        assert private is not None  # the model declares private attributes
        return private

    def _client_side(
        self, *, unmasked: Action, chain: Any, action_json: bytes | None = None
    ) -> DecisionRequest:
        """Attach what ``Client.prepare`` keeps in the process (see the attributes)."""
        private = self._private()
        private["_unmasked"] = unmasked
        private["_delegation_chain"] = chain
        if action_json is not None:
            private["_action_json"] = (self.action, action_json)
        return self

    @property
    def prepared_by_client(self) -> bool:
        return self._private()["_unmasked"] is not None

    def action_json(self) -> bytes:
        """The canonical JSON of ``action`` (as sent), made once per request and
        reused (the audit record holds it). Bound to the very action object, so a
        copy with another action never reuses it."""
        private = self._private()
        made: tuple[Action, bytes] | None = private["_action_json"]
        if made is None or made[0] is not self.action:
            made = private["_action_json"] = (self.action, self.action.canonical())
        return made[1]

    def for_policy(self) -> DecisionRequest:
        """The request as an in-process policy judges it: with the real values when a
        client in this process prepared it, so masking cannot hide a payload from
        shields and conditions; as sent otherwise (e.g. received over the network)."""
        private = self._private()
        unmasked = private["_unmasked"]
        if unmasked is None or unmasked is self.action:
            return self
        judged = DecisionRequest._trusted(
            action=unmasked,
            action_digest=self.action_digest,
            client_checks=self.client_checks,
            review_key=self.review_key,
            delegation=self.delegation,
        )
        _set(judged, "__pydantic_private__", {**private})  # as model_copy would
        return judged


class Decision(_Model):
    """What the engine said about one action."""

    decision_id: str
    status: Status
    reason: str
    tool: str
    action_digest: str
    created_at: datetime
    rule_ids: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    approval_id: str | None = None
    record_id: str | None = None
    expires_at: datetime | None = None
    reviewer: str | None = None
    review_comment: str | None = None
    consumed_at: datetime | None = None
    retry_after: float | None = None
    trust_level: str | None = None
    idempotency_key: str | None = None
    review_key: str | None = None
    failed_open: bool = Field(
        default=False,
        description="True when no valid decision could be had and fail_mode='open' let it through.",
    )

    @property
    def allowed(self) -> bool:
        """True only for ``allowed`` and ``approved``: the action may run."""
        return self.status in (Status.ALLOWED, Status.APPROVED)


class Outcome(_Model):
    """What happened when the action ran, reported after execution."""

    status: str = Field(pattern="^(success|error|cancelled)$")
    detail: str = ""

    @classmethod
    def of_error(cls, error: BaseException) -> Outcome:
        """The outcome of a call that raised ``error`` (its type only: no values).

        A call cancelled from outside (its caller gave up: an MCP client's
        ``notifications/cancelled``, a task group shutting down) did not fail:
        it is recorded as ``cancelled``, not as an error of the tool.
        """
        status = "cancelled" if _is_cancellation(error) else "error"
        return cls(status=status, detail=type(error).__name__)


def _is_cancellation(error: BaseException) -> bool:
    # asyncio's CancelledError (what anyio raises on asyncio), or trio's Cancelled;
    # named, not imported, so the models do not depend on an event loop library.
    kind = type(error)
    return isinstance(error, asyncio.CancelledError) or (
        kind.__name__ == "Cancelled" and kind.__module__.startswith("trio")
    )
