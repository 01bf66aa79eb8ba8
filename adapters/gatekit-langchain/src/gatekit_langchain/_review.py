"""Human review through LangGraph: what the reviewer is shown, and what they answer.

The interrupt's value is ``review_request(...)``; the resume value is a
``ReviewAnswer`` (build it with ``approve``/``reject``), recorded through the
client as that reviewer's review.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from gatekit import (
    BackendError,
    Decision,
    DecisionRequest,
    GatekitError,
    Rejected,
    ReviewConflict,
    ValidationError,
)

__all__ = [
    "ReviewAnswer",
    "approval_id_of",
    "approve",
    "parse_answer",
    "recording_review",
    "refuse_if_rejected",
    "reject",
    "review_request",
]


class ReviewAnswer(BaseModel):
    """The resume value of a review interrupt: who decided what.

    ``approval_id``, when given, must be the approval the interrupt asked about;
    it pins an answer to its call where interrupts share one task (a raw
    ``ToolNode`` running several calls at once).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: Literal["approve", "reject"]
    reviewer: str = Field(min_length=1, pattern=r"\S")
    comment: str = ""
    approval_id: str | None = None

    def reason(self) -> str:
        verb = "approved" if self.decision == "approve" else "rejected"
        return f"{verb} by {self.reviewer}" + (f": {self.comment}" if self.comment else "")


def approve(reviewer: str, comment: str = "", *, approval_id: str | None = None) -> dict[str, Any]:
    """Resume value approving a paused call: ``Command(resume=approve("alice"))``."""
    return _answer("approve", reviewer, comment, approval_id)


def reject(reviewer: str, comment: str = "", *, approval_id: str | None = None) -> dict[str, Any]:
    """Resume value rejecting a paused call: ``Command(resume=reject("alice", "no"))``."""
    return _answer("reject", reviewer, comment, approval_id)


def _answer(decision: str, reviewer: str, comment: str, approval_id: str | None) -> dict[str, Any]:
    answer = {"decision": decision, "reviewer": reviewer, "comment": comment}
    return answer if approval_id is None else {**answer, "approval_id": approval_id}


_RESUME_SHAPE = (
    "{'decision': 'approve' | 'reject', 'reviewer': '<name>', 'comment': '<optional>', "
    "'approval_id': '<optional>'}"
)


def parse_answer(value: object, pending: Decision) -> ReviewAnswer:
    if isinstance(value, ReviewAnswer):
        answer = value
    else:
        try:
            answer = ReviewAnswer.model_validate(value)
        except pydantic.ValidationError:
            shown = repr(value)[:200]
            raise ValidationError(
                f"invalid review resume value {shown}; expected {_RESUME_SHAPE}", field="resume"
            ) from None
    if answer.approval_id is not None and answer.approval_id != pending.approval_id:
        raise ValidationError(
            f"the resume value answers approval {answer.approval_id}, "
            f"not this call's {pending.approval_id}",
            field="resume.approval_id",
        )
    return answer


def review_request(
    request: DecisionRequest, pending: Decision, tool_call_id: str | None
) -> dict[str, Any]:
    """The interrupt payload a human reviewer sees (arguments as sent: DLP-masked)."""
    action = request.action
    return {
        "type": "gatekit.review",
        "tool": action.tool,
        "tool_call_id": tool_call_id,
        "arguments": action.arguments,
        "reason": pending.reason,
        "risk_level": action.risk_level.value,
        "operation_class": action.operation_class.value,
        "data_sensitivity": action.data_sensitivity.value,
        "systems_touched": list(action.systems_touched),
        "decision_id": pending.decision_id,
        "approval_id": pending.approval_id,
        "expires_at": pending.expires_at.isoformat() if pending.expires_at else None,
        "resume_with": _RESUME_SHAPE,
    }


@contextmanager
def recording_review() -> Iterator[None]:
    """Around recording a review: a review already decided elsewhere is not an error
    (the stored decision is re-read next); any other failure is a BackendError."""
    try:
        yield
    except ReviewConflict:
        pass
    except GatekitError:
        raise
    except Exception as exc:
        raise BackendError(f"could not record the review: {type(exc).__name__}: {exc}") from exc


def refuse_if_rejected(answer: ReviewAnswer, pending: Decision) -> None:
    """A "reject" in the resume value keeps the tool from running, whatever is stored."""
    if answer.decision == "reject":
        raise Rejected(pending, answer.reason())


def approval_id_of(pending: Decision) -> str:
    if pending.approval_id is None:
        raise BackendError("a pending review came without an approval id")
    return pending.approval_id
