"""Reading the decision server's answers: trusted only once they are valid.

An answer becomes a ``Decision`` only with the expected status, a JSON body that
is a valid Decision, and the Decision being about what was asked (the action
digest and tool sent, the decision or approval named). A problem document
(RFC 9457) becomes the exception the embedded engine would have raised, from
its stable ``code``. Anything else — another status, a body that does not parse,
a decision about another action — is a ``BackendError``: no valid decision, so
nothing runs. No I/O here; the backend's sync and async paths share it all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, TypeAdapter

from gatekit._exceptions import (
    BackendError,
    GatekitError,
    IdempotencyConflict,
    ReviewConflict,
    ValidationError,
)
from gatekit._models import Action, Decision, Status
from gatekit._problems import (
    IDEMPOTENCY_CONFLICT,
    INVALID_REQUEST,
    MEDIA_TYPE,
    NOT_FOUND,
    REVIEW_CONFLICT,
    decision_error_for,
)
from gatekit.backends._http_retry import Answer

_DETAIL_CHARS = 500  # of a server's message, in ours


@dataclass(frozen=True, slots=True)
class Expected:
    """What a Decision in an answer must be about; None fields are not checked."""

    action_digest: str | None = None
    tool: str | None = None
    decision_id: str | None = None
    approval_id: str | None = None
    # A decision's idempotency key is the one sent, or none (a refused delegation
    # claims none); checked only when ``check_key``.
    check_key: bool = False
    idempotency_key: str | None = None

    def check(self, decision: Decision) -> Decision:
        if self.action_digest is not None and decision.action_digest != self.action_digest:
            raise BackendError("the decision server answered about a different action")
        if self.tool is not None and decision.tool != self.tool:
            raise BackendError("the decision server answered about a different tool")
        if self.decision_id is not None and decision.decision_id != self.decision_id:
            raise BackendError("the decision server answered with another decision")
        if self.approval_id is not None and decision.approval_id != self.approval_id:
            raise BackendError("the decision server answered about another approval")
        if self.check_key and decision.idempotency_key not in (None, self.idempotency_key):
            raise BackendError("the decision server answered under another idempotency key")
        return decision

    def refusal(self) -> Expected:
        """What a refused use's decision must match: only which decision it is. It may
        be about another action (a changed one is refused with the decision as
        decided), and a refusal runs nothing whatever it is about."""
        return Expected(decision_id=self.decision_id, approval_id=self.approval_id)


def read_decision(answer: Answer, expected: Expected) -> Decision:
    """The Decision in a 200 answer, checked against ``expected``."""
    if answer.status != 200:
        raise failure(answer, expected)
    return expected.check(_parse(answer, Decision))


def read_no_content(answer: Answer) -> None:
    if answer.status != 204:
        raise failure(answer, Expected())


class _ApprovalView(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Decision
    action: Action | None


_APPROVALS = TypeAdapter(list[_ApprovalView])


def read_pending(answer: Answer) -> list[Decision]:
    """The decisions waiting for a reviewer, from a list of approvals."""
    if answer.status != 200:
        raise failure(answer, Expected())
    decisions = [view.decision for view in _parse(answer, _APPROVALS)]
    for decision in decisions:
        if decision.status is not Status.PENDING_REVIEW or decision.approval_id is None:
            raise BackendError("the decision server listed a decision that is not pending review")
    return decisions


def read_ready(answer: Answer) -> bool:
    if answer.status != 200:
        return False
    try:
        return bool(_parse(answer, TypeAdapter(dict[str, str])).get("status") == "ready")
    except BackendError:
        return False


# -- failures -----------------------------------------------------------------------


class _Problem(BaseModel):
    """The members of a problem document we read (others are allowed by RFC 9457)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str
    detail: str = ""
    decision: dict[str, Any] | None = None


def failure(answer: Answer, expected: Expected) -> GatekitError:
    """The exception an answer other than the expected success stands for."""
    problem = _problem(answer)
    if problem is None:
        return BackendError(f"the decision server answered HTTP {answer.status} unexpectedly")
    detail = problem.detail[:_DETAIL_CHARS]
    if answer.status == 409:
        mapped = _conflict(problem, detail, expected)
        if mapped is not None:
            return mapped
    if answer.status == 422 and problem.code == INVALID_REQUEST:
        return ValidationError(f"the decision server refused the request: {detail}")
    if answer.status == 404 and problem.code == NOT_FOUND:  # an unknown id, as the engine says
        return ValidationError(f"the decision server knows no such id: {detail}")
    return BackendError(
        f"the decision server answered HTTP {answer.status} ({problem.code[:64]}): {detail}"
    )


def _conflict(problem: _Problem, detail: str, expected: Expected) -> GatekitError | None:
    kind = decision_error_for(problem.code)
    if kind is not None:
        if problem.decision is None:
            return BackendError(
                f"the decision server refused ({problem.code}) without the decision"
            )
        try:
            decision = expected.refusal().check(Decision.model_validate(problem.decision))
        except ValidationError as exc:
            return BackendError(f"the decision server sent an invalid decision: {exc}")
        except BackendError as exc:
            return exc
        return kind(decision, detail or None)
    if problem.code == IDEMPOTENCY_CONFLICT:
        return IdempotencyConflict(detail)
    if problem.code == REVIEW_CONFLICT:
        return ReviewConflict(detail)
    return None


def _problem(answer: Answer) -> _Problem | None:
    if _media_type(answer) not in (MEDIA_TYPE, "application/json"):
        return None
    try:
        return _Problem.model_validate_json(answer.content)
    except pydantic.ValidationError:
        return None


# -- parsing ------------------------------------------------------------------------


def _media_type(answer: Answer) -> str:
    return answer.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _parse(answer: Answer, schema: Any) -> Any:
    """``answer``'s JSON body as ``schema`` (a model class or a TypeAdapter).

    A body that is not what the server must send is the server's failure, never
    the caller's invalid input: it is a BackendError, not a ValidationError.
    """
    if _media_type(answer) != "application/json":
        raise BackendError(
            f"the decision server answered {_media_type(answer) or 'no content type'}, not JSON"
        )
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_json(answer.content)
        return schema.model_validate_json(answer.content)
    except (pydantic.ValidationError, ValidationError) as exc:
        raise BackendError(f"the decision server sent an invalid answer: {exc}") from None
